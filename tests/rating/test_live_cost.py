"""The live session's cost so far: the engine that bills, over the periods the CPO sent so far, under the driver's
plan; when the session completes, the figure shown is the figure the invoice charges for the same periods."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.audit.services import Actor
from app.extensions import db
from app.money import to_minor_units
from app.plans import services as plan_services
from app.rating import live_cost as live
from app.rating.services import rate_cdr
from app.roaming.receive.cdrs import store_cdr
from app.roaming.receive.locations import upsert_location
from app.roaming.receive.sessions import patch_session, store_session
from app.roaming.receive.tariffs import store_tariff
from app.timestamps import ocpi_timestamp
from tests.factories import one_connector_location
from tests.rating.live_sessions import cdr_object, period, session_object
from tests.roaming.conftest import partner  # noqa: F401  (fixture)

# 22:30 in Amsterdam (summer time): the day price ends at 23:00 local, half an hour in.
START = dt.datetime(2026, 10, 14, 20, 30, tzinfo=dt.UTC)
NIGHT = START + dt.timedelta(minutes=30)
END = START + dt.timedelta(hours=1)
TARIFF = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "DAY-NIGHT",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.45, "vat": 21.0, "step_size": 1}],
            "restrictions": {"start_time": "07:00", "end_time": "23:00"},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.29, "vat": 21.0, "step_size": 1}]},
        {"price_components": [{"type": "TIME", "price": 0.60, "vat": 21.0, "step_size": 60}]},
        {"price_components": [{"type": "FLAT", "price": 0.35, "vat": 21.0, "step_size": 1}]},
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


@pytest.fixture
def place(db_session):  # type: ignore[no-untyped-def]
    store_tariff(TARIFF, partner=None, country_code="NL", party_id="TCP")
    return upsert_location(one_connector_location("DAY-NIGHT"), partner=None, country_code="NL", party_id="TCP")


def _only(account_id: int) -> live.LiveCost:
    (found,) = live.live_costs_of(account_id, now=END)
    return found


def test_the_cost_so_far_is_what_the_invoice_charges_for_the_same_periods(driver, place, partner):  # noqa: F811
    account, card = driver
    # Half an hour at the day price: 5 kWh.
    first = period(START, kwh=5, hours=0.5)
    store_session(partner, session_object(card, "S1", START, kwh=5, last_updated=NIGHT, periods=[first]))
    shown = _only(account.id)
    # CPO: 5 × 0.45 + 0.5 h × 0.60 + 0.35 = 2.90; payg adds 5 × 0.05 + 0.35 = 0.60; VAT 21 % (the Netherlands).
    assert (shown.cost.source, shown.cost.basis) == (live.FROZEN_TARIFF, live.CHARGING_PERIODS)
    assert shown.cost.price.cpo_cost == Decimal("2.9000")
    assert shown.cost.price.excl_vat == Decimal("3.5000") and shown.cost.price.incl_vat == Decimal("4.2350")
    assert shown.cost_missing is None and shown.kwh == Decimal(5)

    # Then half an hour at night: 6 kWh more, in a period the CPO appends.
    second = period(NIGHT, kwh=6, hours=0.5)
    patch_session(
        partner, "NL", "TCP", "S1", {"kwh": 11, "charging_periods": [second], "last_updated": ocpi_timestamp(END)}
    )
    during = _only(account.id)
    # CPO: 2.25 + 6 × 0.29 + 1 h × 0.60 + 0.35 = 4.94; ours 11 × 0.05 + 0.35 = 0.90.
    assert during.cost.price.cpo_cost == Decimal("4.9400") and during.cost.price.excl_vat == Decimal("5.8400")
    assert during.version != shown.version

    patch_session(
        partner,
        "NL",
        "TCP",
        "S1",
        {"status": "COMPLETED", "end_date_time": ocpi_timestamp(END), "last_updated": ocpi_timestamp(END)},
    )
    final = live.live_cost(db.session.get(live.ChargingSession, during.session_id))
    cdr, _created = store_cdr(
        partner, cdr_object(card, "CDR1", "S1", START, END, kwh=11, periods=[first, second], cpo_total_excl_vat=4.94)
    )
    charge = rate_cdr(cdr)
    assert charge.tariff_source == "frozen_tariff"
    assert (charge.driver_excl_vat, charge.driver_incl_vat) == (final.cost.price.excl_vat, final.cost.price.incl_vat)
    assert (charge.session_fee, charge.vat_amount) == (final.cost.price.session_fee, final.cost.price.vat)
    # The invoice line is the charge rounded once to cents: the figure the driver saw, to the cent.
    assert to_minor_units(charge.driver_excl_vat, "EUR") == to_minor_units(final.cost.price.excl_vat, "EUR") == 584


def test_the_figures_are_those_of_the_last_update_not_of_the_clock(driver, place, partner):  # noqa: F811
    account, card = driver
    periods = [period(START, kwh=5, hours=0.5, POWER=10.5, STATE_OF_CHARGE=64)]
    store_session(partner, session_object(card, "S1", START, kwh=5, last_updated=NIGHT, periods=periods))
    early, late = (live.live_costs_of(account.id, now=NIGHT + dt.timedelta(minutes=m))[0] for m in (1, 40))
    assert early == late  # polling between two updates: the same figures, the same version
    assert early.as_of == NIGHT and early.duration == dt.timedelta(minutes=30)
    assert early.average_power_kw == Decimal("10.00")  # 5 kWh in half an hour
    assert (early.current_power_kw, early.state_of_charge) == (Decimal("10.5"), Decimal(64))
    assert early.cpo_total is None  # the CPO sent no total_cost

    store_session(
        partner,
        session_object(
            card,
            "S1",
            START,
            kwh=5,
            last_updated=NIGHT,
            periods=periods,
            total_cost={"excl_vat": 2.9, "incl_vat": 3.51},
        ),
    )
    same_moment = _only(account.id)  # the same last_updated with a total_cost: figures changed, so does the version
    assert same_moment.cpo_total == live.CpoTotal(Decimal("2.9"), Decimal("3.51"), "EUR")
    assert same_moment.version != early.version
    assert live.versions_tag([same_moment]) != live.versions_tag([early])


def test_periods_that_do_not_add_up_to_the_kwh_price_the_session_totals(driver, place, partner):  # noqa: F811
    """The official session examples send ENERGY in Wh (41000 for 41 kWh); a CPO may also send no periods, or
    send them later than the kWh. Priced as they are, they would show a cost far from the kWh beside it."""
    account, card = driver
    in_wh = [period(START, kwh=5000, hours=0.5)]
    store_session(partner, session_object(card, "S1", START, kwh=5, last_updated=NIGHT, periods=in_wh))
    wh = _only(account.id)
    assert wh.cost.basis == live.SESSION_TOTALS
    # 5 kWh in half an hour from the start, at constant power: all at the day price, as the example of the estimate.
    assert wh.cost.price.cpo_cost == Decimal("2.9000")

    store_session(partner, session_object(card, "S1", START, kwh=5, last_updated=NIGHT))
    none_sent = _only(account.id)
    assert none_sent.cost.basis == live.SESSION_TOTALS and none_sent.cost.price == wh.cost.price
    assert none_sent.current_power_kw is None and none_sent.average_power_kw == Decimal("10.00")


def test_a_session_not_started_yet_costs_its_fixed_part(driver, place, partner):  # noqa: F811
    account, card = driver
    store_session(partner, session_object(card, "S1", START, kwh=0, last_updated=NIGHT, status="PENDING"))
    pending = _only(account.id)
    assert pending.status == "PENDING" and pending.cost.basis == live.SESSION_TOTALS
    assert pending.cost.price.cpo_cost == Decimal("0.3500")  # the flat fee only: no energy, no charging time


def test_without_a_frozen_tariff_the_cpo_total_cost_is_priced(driver, partner):  # noqa: F811
    account, card = driver  # no tariff and no location known: nothing to freeze
    store_session(partner, session_object(card, "S1", START, kwh=5, last_updated=NIGHT))
    missing = _only(account.id)
    assert (missing.cost, missing.cost_missing) == (None, live.NO_TARIFF)

    total = {"excl_vat": 2.5, "incl_vat": 3.03}
    store_session(partner, session_object(card, "S1", START, kwh=5, last_updated=END, total_cost=total))
    priced = _only(account.id)
    assert (priced.cost.source, priced.cost.basis) == (live.CPO_TOTAL_COST, live.CPO_TOTAL_COST)
    # Rating's last source, with our fees: 2.50 + 0.25 + 0.35; VAT of the CPO's country (no location known).
    assert priced.cost.price.excl_vat == Decimal("3.1000") and priced.cost.price.vat_rate == Decimal(21)


def test_no_plan_at_the_start_means_no_cost(driver, place, partner):  # noqa: F811
    account, card = driver
    before_plan = dt.datetime(2025, 12, 31, 20, tzinfo=dt.UTC)  # the fixture's plan starts on 1 January 2026
    store_session(
        partner, session_object(card, "S1", before_plan, kwh=5, last_updated=before_plan + dt.timedelta(minutes=30))
    )
    (found,) = live.live_costs_of(account.id, now=before_plan + dt.timedelta(hours=1))
    assert (found.cost, found.cost_missing) == (None, live.NO_PLAN)


def test_the_session_fee_cap_counts_the_sessions_of_the_month_as_rating_does(driver, place, partner):  # noqa: F811
    account, card = driver
    capped = plan_services.create_plan(
        "capped-live",
        {"en": "Capped"},
        {
            "monthly_fee": Decimal(0),
            "markup_percent": Decimal(0),
            "markup_per_kwh": Decimal(0),
            "session_fee": Decimal("0.25"),
            "session_fee_cap_per_month": Decimal("0.30"),
        },
        Actor.system("test"),
    )
    for stretch in plan_services.history(account.id):
        stretch.plan = capped
    earlier = START - dt.timedelta(days=1)
    earlier_periods = [period(earlier, kwh=2, hours=0.5)]
    earlier_end = earlier + dt.timedelta(minutes=30)
    store_session(
        partner,
        session_object(
            card,
            "S0",
            earlier,
            kwh=2,
            last_updated=earlier_end,
            periods=earlier_periods,
            status="COMPLETED",
            end=earlier_end,
        ),
    )
    first, _ = store_cdr(
        partner,
        cdr_object(
            card,
            "CDR0",
            "S0",
            earlier,
            earlier + dt.timedelta(minutes=30),
            kwh=2,
            periods=earlier_periods,
            cpo_total_excl_vat=1.25,
        ),
    )
    assert rate_cdr(first).session_fee == Decimal("0.25")

    periods = [period(START, kwh=5, hours=0.5)]
    store_session(partner, session_object(card, "S1", START, kwh=5, last_updated=NIGHT, periods=periods))
    shown = _only(account.id)
    assert shown.cost.price.session_fee == Decimal("0.0500")  # 0.30 cap − 0.25 already charged this month
    cdr, _ = store_cdr(
        partner, cdr_object(card, "CDR1", "S1", START, NIGHT, kwh=5, periods=periods, cpo_total_excl_vat=2.90)
    )
    assert rate_cdr(cdr).driver_excl_vat == shown.cost.price.excl_vat


def test_only_the_accounts_sessions_under_way_newest_first(driver, place, partner):  # noqa: F811
    account, card = driver
    store_session(partner, session_object(card, "OLD", START - dt.timedelta(hours=3), kwh=1, last_updated=START))
    store_session(partner, session_object(card, "NEW", START, kwh=1, last_updated=NIGHT))
    done = session_object(card, "DONE", START, kwh=1, last_updated=NIGHT, status="COMPLETED", end=NIGHT)
    store_session(partner, done)
    stale = START - dt.timedelta(days=3)  # a session the CPO never closed: not "charging now" for ever
    store_session(partner, session_object(card, "STALE", stale, kwh=1, last_updated=stale))
    assert [found.ocpi_id for found in live.live_costs_of(account.id, now=END)] == ["NEW", "OLD"]
    assert live.live_costs_of(account.id + 1000, now=END) == []
