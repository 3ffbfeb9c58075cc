"""Each restriction, period splitting, midnight wrap and both daylight-saving changes in Europe/Brussels."""

from __future__ import annotations

import pytest

from ._support import D, at, charge, pricing, session, tariff

price = pricing.price_session


def two_elements(dim: str, restrictions: dict, cheap: str, normal: str, vat=None) -> object:
    def comp(p):
        c = {"type": dim, "price": D(p), "step_size": 1}
        if vat is not None:
            c["vat"] = D(vat)
        return c

    return tariff(
        {
            "currency": "EUR",
            "id": "T",
            "elements": [
                {"price_components": [comp(cheap)], "restrictions": restrictions},
                {"price_components": [comp(normal)]},
            ],
        }
    )


def test_time_of_day_wraps_past_midnight():
    t = two_elements("ENERGY", {"start_time": "22:00", "end_time": "06:00"}, "0.10", "0.30")
    assert price(t, charge(at("2024-03-01T21:00"), 120, 20)).total_excl_vat == D("4.00")  # 10 × .3 + 10 × .1
    assert price(t, charge(at("2024-03-02T05:00"), 120, 20)).total_excl_vat == D("4.00")
    assert price(t, charge(at("2024-03-01T23:00"), 240, 20)).total_excl_vat == D("2.00")  # all night


def test_end_time_midnight_means_end_of_day():
    t = two_elements("ENERGY", {"start_time": "20:00", "end_time": "00:00"}, "0.10", "0.30")
    assert price(t, charge(at("2024-03-01T23:00"), 120, 20)).total_excl_vat == D("4.00")


def test_time_of_day_in_location_time_zone():
    # 22:00-06:00 Brussels local is 21:00-05:00 UTC in winter.
    t = two_elements("ENERGY", {"start_time": "22:00", "end_time": "06:00"}, "0.10", "0.30")
    cdr = charge(at("2024-01-10T20:00"), 120, 20)
    assert price(t, cdr).total_excl_vat == D("6.00")  # UTC: all before 22:00
    assert price(t, cdr, "Europe/Brussels").total_excl_vat == D("4.00")


def test_dst_spring_forward_brussels():
    # 2024-03-31: 02:00 CET jumps to 03:00 CEST (01:00 UTC). Window 02:00-04:00 local is 01:00-02:00 UTC.
    t = two_elements("TIME", {"start_time": "02:00", "end_time": "04:00"}, "10", "1")
    cdr = charge(at("2024-03-31T00:00"), 180, 30)  # 01:00 CET .. 05:00 CEST, 3 real hours
    r = price(t, cdr, "Europe/Brussels")
    assert r.time.excl_vat == D("12.00")  # 1 h × 10 + 2 h × 1


def test_dst_autumn_back_brussels():
    # 2024-10-27: 03:00 CEST falls back to 02:00 CET (01:00 UTC); 02:00-03:00 local happens twice.
    t = two_elements("TIME", {"start_time": "02:00", "end_time": "04:00"}, "10", "1")
    cdr = charge(at("2024-10-27T00:00"), 180, 30)  # 02:00 CEST .. 04:00 CET
    assert price(t, cdr, "Europe/Brussels").time.excl_vat == D("30.00")  # all 3 real hours in the window
    half = two_elements("TIME", {"start_time": "02:30", "end_time": "03:00"}, "10", "1")
    assert price(half, cdr, "Europe/Brussels").time.excl_vat == D("12.00")  # 02:30-03:00 twice


def test_day_of_week_with_midnight_split_in_local_time():
    t = two_elements("ENERGY", {"day_of_week": ["SATURDAY", "SUNDAY"]}, "0.10", "0.30")
    # Friday 2024-03-01 23:00 UTC .. Saturday 01:00 UTC, 10 kWh evenly.
    assert price(t, charge(at("2024-03-01T23:00"), 120, 10)).total_excl_vat == D("2.00")
    # Same instants in Brussels (UTC+1): Saturday from 23:00 UTC already → all at 0.10.
    assert price(t, charge(at("2024-03-01T23:00"), 120, 10), "Europe/Brussels").total_excl_vat == D("1.00")


def test_day_of_week_and_wrapping_time_are_a_plain_and():
    # "Friday 22:00-06:00": Saturday 02:00 is not a Friday, so the element does not apply then.
    t = two_elements("ENERGY", {"start_time": "22:00", "end_time": "06:00", "day_of_week": ["FRIDAY"]}, "0.10", "0.30")
    assert price(t, charge(at("2024-03-01T23:00"), 120, 10)).total_excl_vat == D("2.00")


def test_start_date_inclusive_end_date_exclusive():
    t = two_elements("ENERGY", {"start_date": "2024-03-02", "end_date": "2024-03-03"}, "0.10", "0.30")
    cdr = charge(at("2024-03-01T23:00"), 26 * 60, 26)  # 1 h before, 24 h on the 2nd, 1 h on the 3rd
    assert price(t, cdr).total_excl_vat == D("3.00")


def test_max_kwh_splits_by_energy():
    t = two_elements("ENERGY", {"max_kwh": 10}, "0.20", "0.40")
    assert price(t, charge(at("2024-03-01T10:00"), 60, 20)).total_excl_vat == D("6.00")


def test_min_kwh_splits_by_energy_and_time_at_proportional_time():
    t = two_elements("ENERGY", {"min_kwh": 5}, "0.50", "0.10")
    assert price(t, charge(at("2024-03-01T10:00"), 60, 20)).total_excl_vat == D("8.00")
    # TIME priced only below 10 kWh: 20 kWh in 60 min linear → the first 30 minutes.
    timed = two_elements("TIME", {"max_kwh": 10}, "6", "0")
    assert price(timed, charge(at("2024-03-01T10:00"), 60, 20)).total_excl_vat == D("3.00")


def test_kwh_is_cumulative_over_periods():
    t = two_elements("ENERGY", {"min_kwh": 15}, "0.50", "0.10")
    cdr = session(at("2024-03-01T10:00"), (30, {"energy": 10, "time_min": 30}), (30, {"energy": 10, "time_min": 30}))
    assert price(t, cdr).total_excl_vat == D("1.5") + D("2.5")


def test_min_and_max_duration():
    t = two_elements("TIME", {"min_duration": 1800}, "6", "0")
    assert price(t, charge(at("2024-03-01T10:00"), 60, 5)).total_excl_vat == D("3.00")
    t = two_elements("TIME", {"max_duration": 1800}, "0", "6")
    assert price(t, charge(at("2024-03-01T10:00"), 60, 5)).total_excl_vat == D("3.00")


def test_min_and_max_power():
    t = two_elements("ENERGY", {"min_power": 22}, "0.50", "0.30")
    fast = charge(at("2024-03-01T10:00"), 60, 50)
    slow = charge(at("2024-03-01T10:00"), 60, 11)
    assert price(t, fast).total_excl_vat == D("25.00")
    assert price(t, slow).total_excl_vat == D("3.30")
    t = two_elements("ENERGY", {"max_power": 22}, "0.20", "0.30")
    assert price(t, slow).total_excl_vat == D("2.20")
    assert price(t, fast).total_excl_vat == D("15.00")


def test_min_and_max_current():
    t = two_elements("TIME", {"min_current": 32}, "2", "1")
    assert price(t, charge(at("2024-03-01T10:00"), 60, 20, min_current=40, max_current=48)).total_excl_vat == 2
    assert price(t, charge(at("2024-03-01T10:00"), 60, 20, min_current=16, max_current=16)).total_excl_vat == 1
    # A current restriction cannot be verified without current data: it does not hold.
    assert price(t, charge(at("2024-03-01T10:00"), 60, 20)).total_excl_vat == 1
    t = two_elements("TIME", {"max_current": 32}, "2", "1")
    assert price(t, charge(at("2024-03-01T10:00"), 60, 20, max_current=16)).total_excl_vat == 2
    assert price(t, charge(at("2024-03-01T10:00"), 60, 20, max_current=32)).total_excl_vat == 1  # exclusive


def test_no_matching_element_means_free_dimension():
    t = tariff(
        {
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}],
                    "restrictions": {"start_time": "08:00", "end_time": "09:00"},
                }
            ],
        }
    )
    assert price(t, charge(at("2024-03-01T10:00"), 60, 20)).total_excl_vat == 0


def test_real_feed_end_time_2359_leaves_last_minute_free():
    # Real NL tariffs say 00:00-23:59: by the rules 23:59-00:00 has no element, so that minute is free.
    t = tariff(
        {
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [{"type": "TIME", "price": 60, "step_size": 1}],
                    "restrictions": {"start_time": "00:00", "end_time": "23:59"},
                }
            ],
        }
    )
    assert price(t, charge(at("2024-03-01T23:58"), 2)).total_excl_vat == D("1.00")


def test_flat_is_once_per_session_even_across_elements():
    t = tariff(
        {
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [{"type": "FLAT", "price": 1, "step_size": 1}],
                    "restrictions": {"start_time": "10:00", "end_time": "11:00"},
                },
                {"price_components": [{"type": "FLAT", "price": 2, "step_size": 1}]},
            ],
        }
    )
    assert price(t, charge(at("2024-03-01T09:30"), 120, 5)).flat.excl_vat == 2  # first piece: 09:30
    assert price(t, charge(at("2024-03-01T10:30"), 120, 5)).flat.excl_vat == 1


def test_energy_step_uses_total_and_last_component():
    # mod_cdrs: 4.3 kWh before 17:00 at 0.20, 1.1 kWh after at 0.27, steps of 500 Wh → 5.5 kWh total.
    t = tariff(
        {
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [{"type": "ENERGY", "price": D("0.20"), "step_size": 500}],
                    "restrictions": {"end_time": "17:00"},
                },
                {"price_components": [{"type": "ENERGY", "price": D("0.27"), "step_size": 500}]},
            ],
        }
    )
    cdr = session(
        at("2024-03-01T16:00"),
        (60, {"energy": "4.3", "time_min": 60}),
        (30, {"energy": "1.1", "time_min": 30}),
    )
    r = price(t, cdr)
    assert r.energy.quantity == D("5.5")
    assert r.total_excl_vat == D("0.86") + D("1.2") * D("0.27")


def test_time_step_uses_total_time_not_last_piece():
    # mod_cdrs: 6 min before 17:00 (€5/h), 22 after (€7/h), steps of 10 min → 28 → 30 min, 24 after 17:00.
    t = tariff(
        {
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [{"type": "TIME", "price": 5, "step_size": 600}],
                    "restrictions": {"end_time": "17:00"},
                },
                {"price_components": [{"type": "TIME", "price": 7, "step_size": 600}]},
            ],
        }
    )
    r = price(t, charge(at("2024-03-01T16:54"), 28, 5))
    assert r.total_excl_vat == D("0.5") + D("2.8")


def test_parking_after_charging_gets_the_step_not_charging():
    # mod_cdrs: charge 21 min (€1/h), park 16 min (€2/h), steps 10 min: charging stays 21, parking → 20.
    t = tariff(
        {
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [
                        {"type": "TIME", "price": 1, "step_size": 600},
                        {"type": "PARKING_TIME", "price": 2, "step_size": 600},
                    ]
                }
            ],
        }
    )
    r = price(t, charge(at("2024-03-01T10:00"), 21, 5, 16))
    assert r.time.quantity == D(21) / 60 and r.parking_time.quantity == D(20) / 60


def test_tariff_validity_window():
    t = pricing.parse_tariff(
        {
            "currency": "EUR",
            "start_date_time": "2024-03-01T00:00:00Z",
            "end_date_time": "2024-04-01T00:00:00Z",
            "elements": [{"price_components": [{"type": "FLAT", "price": 1, "step_size": 1}]}],
        }
    )
    assert price(t, charge(at("2024-03-15T10:00"), 10)).total_excl_vat == 1
    with pytest.raises(pricing.TariffNotValidError):
        price(t, charge(at("2024-02-29T23:59"), 10))
    with pytest.raises(pricing.TariffNotValidError):
        price(t, charge(at("2024-04-01T00:01"), 10))


def test_currency_and_tariff_id_mismatch():
    t = two_elements("ENERGY", {}, "1", "1")
    with pytest.raises(pricing.CurrencyMismatchError):
        price(t, session(at("2024-03-01T10:00"), (10, {"energy": 1}), currency="USD"))
    cdr = pricing.parse_cdr(
        {
            "start_date_time": "2024-03-01T10:00:00Z",
            "end_date_time": "2024-03-01T11:00:00Z",
            "currency": "EUR",
            "charging_periods": [
                {
                    "start_date_time": "2024-03-01T10:00:00Z",
                    "tariff_id": "OTHER",
                    "dimensions": [{"type": "ENERGY", "volume": 1}],
                }
            ],
        }
    )
    with pytest.raises(pricing.PricingInputError, match="tariff_id"):
        price(t, cdr)


def test_bounds_without_incl_vat_scale_incl_by_the_same_factor():
    t = pricing.parse_tariff(
        {
            "currency": "EUR",
            "max_price": {"excl_vat": 10},
            "elements": [{"price_components": [{"type": "ENERGY", "price": 1, "vat": 21, "step_size": 1}]}],
        }
    )
    r = price(t, charge(at("2024-03-01T10:00"), 60, 20))
    assert (r.total_excl_vat, r.total_incl_vat) == (D(10), D("12.1000"))
    t = pricing.parse_tariff(
        {
            "currency": "EUR",
            "min_price": {"excl_vat": 2},
            "elements": [{"price_components": [{"type": "ENERGY", "price": 1, "vat": 21, "step_size": 1}]}],
        }
    )
    assert price(t, charge(at("2024-03-01T10:00"), 60, 0)).total_incl_vat == 2  # nothing to scale: no VAT known


def test_zero_length_period_and_vat_flag():
    cdr = session(at("2024-03-01T10:00"), (0, {"energy": 1}), (60, {"energy": 1, "time_min": 60}))
    r = price(two_elements("ENERGY", {}, "1", "1", vat=21), cdr)
    assert r.total_excl_vat == 2 and r.total_incl_vat == D("2.42") and not r.vat_unknown


def test_a_period_names_its_tariff_in_any_case():
    """Tariff ids are CiStrings: a period naming "t" refers to the tariff "T" (a real CPO's lower-case ids)."""
    t = two_elements("ENERGY", {}, "1", "1")
    cdr = pricing.parse_cdr(
        {
            "start_date_time": "2024-03-01T10:00:00Z",
            "end_date_time": "2024-03-01T11:00:00Z",
            "currency": "EUR",
            "charging_periods": [
                {
                    "start_date_time": "2024-03-01T10:00:00Z",
                    "tariff_id": "t",
                    "dimensions": [{"type": "ENERGY", "volume": 10}],
                }
            ],
        }
    )
    assert price(t, cdr).total_excl_vat == price(t, charge(at("2024-03-01T10:00"), 60, 10)).total_excl_vat
