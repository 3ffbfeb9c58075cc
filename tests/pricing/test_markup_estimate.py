"""Our fees (markup.py), VAT by country (vat.py) and the pre-charging estimate (estimate.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ._support import D, at, charge, pricing, tariff

TERMS = pricing.PlanTerms(
    monthly_fee=D("4.99"),
    markup_percent=D("10"),
    markup_per_kwh=D("0.05"),
    session_fee=D("0.35"),
    session_fee_cap_per_month=D("1.00"),
    currency="EUR",
)


def test_driver_price_breakdown():
    p = pricing.driver_price(TERMS, D("5.00"), D("20"), D("0"), "BE")
    assert (p.cpo_cost, p.percent_markup, p.kwh_markup, p.session_fee) == (
        D("5.00"),
        D("0.5"),
        D("1.00"),
        D("0.35"),
    )
    assert p.margin == D("1.85") and p.excl_vat == D("6.85")
    assert p.vat_rate == 21 and p.vat == D("1.4385") and p.incl_vat == D("8.2885")


def test_session_fee_respects_monthly_cap():
    assert pricing.driver_price(TERMS, D(5), D(1), D("0.70"), "NL").session_fee == D("0.30")
    assert pricing.driver_price(TERMS, D(5), D(1), D("1.00"), "NL").session_fee == 0
    assert pricing.driver_price(TERMS, D(5), D(1), D("3.00"), "NL").session_fee == 0
    uncapped = pricing.PlanTerms(
        monthly_fee=D(0), markup_percent=D(0), markup_per_kwh=D(0), session_fee=D("0.35"), currency="EUR"
    )
    assert pricing.driver_price(uncapped, D(5), D(1), D("99"), "NL").session_fee == D("0.35")


def test_rounding_is_four_decimals_half_up():
    p = pricing.driver_price(TERMS, D("1.23456"), D("0.00005"), D(0), "BE")
    assert p.cpo_cost == D("1.2346") and p.percent_markup == D("0.1235") and p.kwh_markup == D("0.0000")


def test_vat_table_and_unknown_country():
    assert pricing.driver_price(TERMS, D(10), D(0), D(0), "NLD").vat_rate == 21  # CDR alpha-3 codes work
    assert pricing.driver_price(TERMS, D(10), D(0), D(0), "DE", {"DE": D(19)}).vat == D("2.1565")
    with pytest.raises(pricing.UnknownCountryError, match="FR"):
        pricing.driver_price(TERMS, D(10), D(0), D(0), "FR")


def test_plan_currency_and_inputs_validated():
    with pytest.raises(pricing.CurrencyMismatchError):
        pricing.driver_price(TERMS, D(10), D(0), D(0), "BE", currency="USD")
    with pytest.raises(pricing.PricingInputError):
        pricing.driver_price(TERMS, D(-1), D(0), D(0), "BE")
    with pytest.raises(pricing.PricingInputError):
        pricing.PlanTerms(monthly_fee=D(0), markup_percent=D(-1), markup_per_kwh=D(0), session_fee=D(0), currency="EUR")


def test_estimate_uses_the_engine_and_splits_cpo_and_our_fees():
    t = tariff("tariff_10_025kwh_parking_start.json")
    start = datetime(2024, 3, 1, 10, 0, tzinfo=ZoneInfo("Europe/Brussels"))
    e = pricing.estimate(t, TERMS, "BE", D(20), timedelta(hours=1), start, "Europe/Brussels")
    published = {c.dimension: (c.price, c.vat, c.step_size) for c in e.cpo_components}
    assert published == {
        "FLAT": (D("0.50"), D("20.0"), 1),
        "ENERGY": (D("0.25"), D("10.0"), 1),
        "PARKING_TIME": (D("2.00"), D("20.0"), 900),
    }
    assert e.our_fees.markup_percent == 10 and e.our_fees.session_fee == D("0.35")
    assert e.example_cpo.total_excl_vat == D("5.50")
    # Same as pricing the equivalent CDR and applying the markup: estimate == invoice by construction.
    cpo = pricing.price_session(t, charge(at("2024-03-01T09:00"), 60, 20))
    assert e.example_driver == pricing.driver_price(TERMS, cpo.total_excl_vat, D(20), D(0), "BE")


def test_estimate_picks_the_element_active_at_start_and_power():
    t = tariff("tariffrestriction_example_max_power.json")
    start = at("2024-03-01T10:00")
    slow = pricing.estimate(t, TERMS, "NL", D(10), timedelta(hours=1), start, None)
    assert [c.price for c in slow.cpo_components] == [D("0.20")]
    fast = pricing.estimate(t, TERMS, "NL", D(10), timedelta(hours=1), start, None, max_power_kw=D(50))
    assert [c.price for c in fast.cpo_components] == [D("0.50")]
    assert fast.example_cpo.total_excl_vat == D("5.00")
    with pytest.raises(pricing.PricingInputError):
        pricing.estimate(t, TERMS, "NL", D(100), timedelta(hours=1), start, None, max_power_kw=D(11))
    with pytest.raises(pricing.PricingInputError):
        pricing.estimate(t, TERMS, "NL", D(10), timedelta(hours=1), datetime(2024, 3, 1), None)
