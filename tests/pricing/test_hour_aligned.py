"""Real CPOs' CDRs are priced: charging periods that do not fit the session (hour-aligned periods of Dutch CPOs,
periods out of order or after the end) are counted from where they fit, with a note for each; what cannot be
priced honestly stays refused. And the reported quantities mean what OCPI says: ``total_time`` is the session's
duration, ``total_parking_time`` the time not charging."""

from __future__ import annotations

import copy
import gzip
import json

import pytest

from ._support import REAL_TARIFFS, D, at, pricing
from .test_cli import run

SESSION_START, SESSION_END = "2026-06-10T12:20:00Z", "2026-06-10T14:05:00Z"


def hour_aligned_cdr(*, time: bool = False) -> dict:
    """Built like the real one: a session from 12:20 to 14:05 whose periods start at the full hours (12:00, 13:00,
    14:00), with ENERGY (and, ``time``, the TIME charged within the session)."""

    def dims(kwh: str, hours: str) -> list[dict]:
        out = [{"type": "ENERGY", "volume": D(kwh)}]
        return [*out, {"type": "TIME", "volume": D(hours)}] if time else out

    return {
        "id": "NL-HOUR-1",
        "start_date_time": SESSION_START,
        "end_date_time": SESSION_END,
        "currency": "EUR",
        "charging_periods": [
            {"start_date_time": "2026-06-10T12:00:00Z", "dimensions": dims("7.25", "0.666667")},
            {"start_date_time": "2026-06-10T13:00:00Z", "dimensions": dims("10.875", "1")},
            {"start_date_time": "2026-06-10T14:00:00Z", "dimensions": dims("0.906", "0.083333")},
        ],
    }


def starting_at_the_session(cdr: dict) -> dict:
    """The same CDR with its first period starting when the session did: what the engine counts."""
    moved = copy.deepcopy(cdr)
    moved["charging_periods"][0]["start_date_time"] = cdr["start_date_time"]
    return moved


ENERGY_TARIFF = {
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": D("0.40"), "vat": D(21), "step_size": 1}]}],
}


def test_hour_aligned_cdr_is_priced_with_a_note():
    cdr = pricing.parse_cdr(hour_aligned_cdr())
    result = pricing.price_session(pricing.parse_tariff(ENERGY_TARIFF), cdr)
    assert result.total_excl_vat == D("7.6124")  # 19.031 kWh × 0.40: every kWh the CPO metered
    [note] = result.notes
    assert (note.period, note.kind) == (0, "before_start")
    assert (note.started, note.counted_from, note.reference) == (
        at("2026-06-10T12:00"),
        at("2026-06-10T12:20"),
        at("2026-06-10T12:20"),
    )
    assert (
        note.text() == "charging period 0 started 12:00 UTC, before the session start 12:20 UTC: counted from 12:20 UTC"
    )
    assert result.to_json_dict()["notes"] == [note.text()]
    assert note.to_json_dict() == {
        "period": 0,
        "kind": "before_start",
        "started": "2026-06-10T12:00:00Z",
        "counted_from": "2026-06-10T12:20:00Z",
        "reference": "2026-06-10T12:20:00Z",
        "text": note.text(),
    }


def test_a_note_is_in_the_locations_local_time():
    cdr = pricing.parse_cdr(hour_aligned_cdr())
    [note] = pricing.price_session(pricing.parse_tariff(ENERGY_TARIFF), cdr, "Europe/Amsterdam").notes
    assert note.text() == (
        "charging period 0 started 14:00 CEST, before the session start 14:20 CEST: counted from 14:20 CEST"
    )


def test_duration_restrictions_count_from_the_session_start_not_the_hour():
    # The first 30 minutes of a session cost 0.50/kWh, then 0.30. Period 0 is counted from 12:20: its first
    # three quarters (12:20-12:50) are in the first 30 minutes — counting from 12:00 would give half.
    tariff = pricing.parse_tariff(
        {
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [{"type": "ENERGY", "price": D("0.50"), "step_size": 1}],
                    "restrictions": {"max_duration": 1800},
                },
                {"price_components": [{"type": "ENERGY", "price": D("0.30"), "step_size": 1}]},
            ],
        }
    )
    cdr = pricing.parse_cdr(hour_aligned_cdr())
    result = pricing.price_session(tariff, cdr)
    # 7.25 kWh: 5.4375 at 0.50 (2.71875 → 2.7188) + 1.8125 at 0.30 joining the 11.781 kWh of the later periods
    # (13.5935 kWh × 0.30 = 4.07805 → 4.0781).
    assert result.total_excl_vat == D("2.7188") + D("4.0781")
    assert (
        result.total_excl_vat
        == pricing.price_session(tariff, pricing.parse_cdr(starting_at_the_session(hour_aligned_cdr()))).total_excl_vat
    )


def test_periods_out_of_order_and_after_the_end_are_counted_where_they_fit():
    data = hour_aligned_cdr()
    data["charging_periods"] = [
        {"start_date_time": "2026-06-10T12:20:00Z", "dimensions": [{"type": "ENERGY", "volume": 5}]},
        {"start_date_time": "2026-06-10T13:30:00Z", "dimensions": [{"type": "ENERGY", "volume": 4}]},
        {"start_date_time": "2026-06-10T13:00:00Z", "dimensions": [{"type": "ENERGY", "volume": 3}]},
        {"start_date_time": "2026-06-10T14:10:00Z", "dimensions": [{"type": "ENERGY", "volume": 2}]},
    ]
    result = pricing.price_session(pricing.parse_tariff(ENERGY_TARIFF), pricing.parse_cdr(data))
    assert result.energy.quantity == D(14) and result.total_excl_vat == D("5.6")  # nothing lost
    assert [(note.period, note.kind, note.counted_from) for note in result.notes] == [
        (2, "before_previous", at("2026-06-10T13:30")),
        (3, "after_end", at("2026-06-10T14:05")),
    ]
    assert [note.text() for note in result.notes] == [
        "charging period 2 started 13:00 UTC, before the start of charging period 1 13:30 UTC: counted from 13:30 UTC",
        "charging period 3 started 14:10 UTC, after the session end 14:05 UTC: counted from 14:05 UTC",
    ]


def test_a_note_names_the_day_when_it_is_not_the_sessions():
    data = hour_aligned_cdr()
    data["start_date_time"] = "2026-06-10T00:20:00Z"
    data["charging_periods"][0]["start_date_time"] = "2026-06-09T23:00:00Z"
    [note] = pricing.price_session(pricing.parse_tariff(ENERGY_TARIFF), pricing.parse_cdr(data)).notes
    assert note.text() == (
        "charging period 0 started 2026-06-09 23:00 UTC, before the session start 00:20 UTC: counted from 00:20 UTC"
    )


def test_a_cdr_that_fits_has_no_notes():
    result = pricing.price_session(
        pricing.parse_tariff(ENERGY_TARIFF), pricing.parse_cdr(starting_at_the_session(hour_aligned_cdr()))
    )
    assert result.notes == () and result.to_json_dict()["notes"] == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d["charging_periods"][1]["dimensions"][0].update(volume=-1), "negative ENERGY volume"),
        (lambda d: d.update(charging_periods=[]), "charging_periods: expected a non-empty list"),
        (lambda d: d.update(end_date_time="2026-06-10T12:00:00Z"), "end_date_time: is before start_date_time"),
    ],
)
def test_what_cannot_be_priced_honestly_stays_refused(damage, message):
    data = hour_aligned_cdr()
    damage(data)
    with pytest.raises(pricing.PricingInputError, match=message):
        pricing.parse_cdr(data)


def test_the_engine_refuses_a_session_ending_before_it_starts():
    good = pricing.parse_cdr(hour_aligned_cdr())
    backwards = pricing.CdrInput(start=good.end, end=good.start, currency="EUR", periods=good.periods)
    with pytest.raises(pricing.PricingInputError, match="end_date_time: is before start_date_time"):
        pricing.price_session(pricing.parse_tariff(ENERGY_TARIFF), backwards)


# --- quantities -------------------------------------------------------------------------------------------------


def test_total_time_is_the_sessions_duration_also_with_energy_only_periods():
    result = pricing.price_session(pricing.parse_tariff(ENERGY_TARIFF), pricing.parse_cdr(hour_aligned_cdr()))
    assert result.total_time == D("1.75")  # 12:20 → 14:05, though no period carries TIME
    assert result.total_parking_time == 0  # every period transferred energy
    assert result.to_json_dict()["total_time"] == "1.7500"


def test_parking_time_is_the_length_of_periods_without_energy_when_no_time_is_metered():
    data = hour_aligned_cdr()
    data["charging_periods"][2]["dimensions"] = [{"type": "ENERGY", "volume": 0}]  # 14:00-14:05: plugged, idle
    result = pricing.price_session(pricing.parse_tariff(ENERGY_TARIFF), pricing.parse_cdr(data))
    assert result.total_parking_time == D(5) / 60 and result.total_time == D("1.75")


def test_parking_time_is_the_metered_parking_time_when_the_periods_carry_it():
    data = hour_aligned_cdr(time=True)
    data["charging_periods"][2]["dimensions"] = [{"type": "PARKING_TIME", "volume": D("0.083333")}]
    result = pricing.price_session(pricing.parse_tariff(ENERGY_TARIFF), pricing.parse_cdr(data))
    assert result.total_parking_time == D("0.083333") and result.total_time == D("1.75")


def test_money_of_time_tariffs_does_not_change_only_the_reported_quantity():
    # TIME 2.00/h and PARKING_TIME 5.00/h: billed on the periods' metered TIME and PARKING_TIME, as before;
    # total_time reports the session (1 h 45 min), not TIME + PARKING_TIME (1 h 40 min) as metered.
    tariff = pricing.parse_tariff(
        {
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [
                        {"type": "TIME", "price": D(2), "step_size": 1},
                        {"type": "PARKING_TIME", "price": D(5), "step_size": 1},
                    ]
                }
            ],
        }
    )
    data = starting_at_the_session(hour_aligned_cdr(time=True))
    data["charging_periods"][1]["dimensions"] = [{"type": "TIME", "volume": D("0.75")}]
    data["charging_periods"][2]["dimensions"] = [{"type": "PARKING_TIME", "volume": D("0.25")}]
    result = pricing.price_session(tariff, pricing.parse_cdr(data))
    assert result.time.quantity == D("1.416667") and result.parking_time.quantity == D("0.25")
    assert result.total_excl_vat == D("2.8333") + D("1.25")  # 1.416667 h × 2.00 → 2.8333; 0.25 h × 5.00
    assert result.total_time == D("1.75") and result.total_parking_time == D("0.25")


# --- the real Dutch tariffs ---------------------------------------------------------------------------------------


def _real_tariffs() -> list[dict]:
    with gzip.open(REAL_TARIFFS, "rt") as handle:
        return json.loads(handle.read(), parse_float=D)


@pytest.mark.parametrize("with_time", [False, True], ids=["energy-only", "energy-and-time"])
def test_every_real_dutch_tariff_prices_the_hour_aligned_cdr(with_time):
    tariffs = _real_tariffs()
    assert len(tariffs) > 900
    data = hour_aligned_cdr(time=with_time)
    cdr, fitted = pricing.parse_cdr(data), pricing.parse_cdr(starting_at_the_session(data))
    for raw in tariffs:
        compiled = pricing.compile_tariff(pricing.parse_tariff(raw))
        result = pricing.price_session(compiled, cdr, "Europe/Amsterdam")
        expected = pricing.price_session(compiled, fitted, "Europe/Amsterdam")
        assert (result.total_excl_vat, result.total_incl_vat) == (expected.total_excl_vat, expected.total_incl_vat)
        assert result.total_excl_vat >= 0, raw["id"]
        assert [note.kind for note in result.notes] == ["before_start"], raw["id"]
        assert result.total_time == D("1.75"), raw["id"]


def test_price_cdr_prints_the_notes(tmp_path):
    [tariff] = [raw for raw in _real_tariffs() if raw["id"] == "4473587a5b74614ccc3a0ccec240ea51"]  # 0.388/kWh
    result = run(tmp_path, _json_text(tariff), _json_text(hour_aligned_cdr()), "--timezone", "Europe/Amsterdam")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    note = "charging period 0 started 14:00 CEST, before the session start 14:20 CEST: counted from 14:20 CEST"
    assert out["notes"] == [note]
    assert out["total_time"] == "1.7500" and out["total_cost"]["excl_vat"] == "7.3840"  # 19.031 × 0.388
    assert result.stderr == f"note: {note}\n"


def _json_text(value: dict) -> str:
    # Short decimals written as JSON numbers (their float repr is the same digits: 0.388, 7.25).
    return json.dumps(value, default=float)
