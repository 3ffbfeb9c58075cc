"""The driver's price in results: exactly the rating estimate for the connector that matched, under the driver's
plan (Pay-as-you-go for a visitor); unknown, and saying why, when it cannot be computed; cheapest first."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.audit.services import Actor
from app.db import utcnow
from app.extensions import db
from app.finder.filters import Filters
from app.finder.prices import PriceUnknown
from app.finder.queries import NearbyQuery, SortOrder
from app.finder.services import search_nearby
from app.finder.tariff_versions import version_in_force
from app.plans import services as plan_services
from app.rating.estimates import estimate_for_connector
from app.roaming.models import TariffVersion
from app.roaming.receive.locations import get_location
from app.roaming.receive.tariffs import delete_tariff, store_tariff, tariff_in_force, tariff_versions
from tests.factories import make_user
from tests.finder.builders import (
    CCS_150KW,
    STAMP,
    TYPE2_11KW,
    TYPE2_22KW,
    add_location,
    connector,
    energy_tariff,
    evse,
)

HERE = (52.09, 5.11)
TYPICAL = {"kwh": Decimal(20), "duration": dt.timedelta(minutes=45)}


def near(steps: int) -> tuple[float, float]:
    return (HERE[0] + 0.001 * steps, HERE[1])


def one(**filters):  # type: ignore[no-untyped-def]
    [item] = search_nearby(NearbyQuery(*HERE, radius_km=2, filters=Filters(**filters)), at=utcnow()).items
    return item


DAY_NIGHT = {
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
        {
            "price_components": [{"type": "TIME", "price": 2.0, "vat": 21.0, "step_size": 60}],
            "restrictions": {"min_duration": 1800},
        },
        {"price_components": [{"type": "FLAT", "price": 0.35, "vat": 21.0, "step_size": 1}]},
    ],
    "last_updated": STAMP,
}


def test_price_is_the_rating_estimate_of_the_matching_connector(db_session):
    store_tariff(DAY_NIGHT, partner=None, country_code="NL", party_id="TCP")
    energy_tariff("FAST", "0.69")
    location = add_location(
        *near(1),
        evse("AC", connector(TYPE2_22KW, tariff_ids=["DAY-NIGHT"])),
        evse("DC", connector(CCS_150KW, tariff_ids=["FAST"])),
    )
    payg = plan_services.current_version("payg")
    for filters, evse_uid in (({"connector_types": frozenset({"IEC_62196_T2_COMBO"})}, "DC"), ({}, "AC")):
        at = utcnow()
        item = search_nearby(NearbyQuery(*HERE, radius_km=2, filters=Filters(**filters)), at=at).items[0]
        expected = estimate_for_connector(
            get_location("NL", "TCP", location.ocpi_id), evse_uid, "1", plan=payg, at=at, **TYPICAL
        )
        assert item.priced_connector == (evse_uid, "1")
        assert item.price.estimate == expected  # the whole estimate: CPO components, our fees, the example
        assert item.price.incl_vat == expected.example_driver.incl_vat
        assert item.price.currency == "EUR" and item.price.plan_code == "payg"
        assert (item.price.kwh, item.price.minutes) == (Decimal(20), 45)
    # Without a filter both connectors match: the result's price is the cheaper one (the AC's here), and each
    # matching connector carries its own.
    [ac, dc] = [c for e in item.evses for c in e.connectors]
    assert ac.price.incl_vat < dc.price.incl_vat and item.price is ac.price
    assert item.tariff.text.startswith("€0.45/kWh from 07:00 to 23:00, €0.29/kWh otherwise")
    assert dc.tariff.text == "€0.69/kWh (excl. VAT)"


def test_visitors_pay_as_you_go_and_drivers_their_own_plan(db_session):
    energy_tariff("T1", "0.40")
    location = add_location(*near(1), evse("E1", connector(TYPE2_11KW, tariff_ids=["T1"])))
    user = make_user()
    comfort = plan_services.current_version("comfort")
    for stretch in plan_services.history(user.account.id):
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    plan_services.change_plan(user.account, comfort, Actor.system("test"))
    db.session.flush()
    at = utcnow()
    stored = get_location("NL", "TCP", location.ocpi_id)

    visitor = search_nearby(NearbyQuery(*HERE, radius_km=2), at=at).items[0].price
    payg = estimate_for_connector(stored, "E1", "1", plan=plan_services.current_version("payg"), at=at, **TYPICAL)
    assert visitor.plan_code == "payg" and visitor.estimate == payg

    driver = search_nearby(NearbyQuery(*HERE, radius_km=2), account=user.account, at=at).items[0].price
    theirs = estimate_for_connector(stored, "E1", "1", account=user.account, at=at, **TYPICAL)
    assert driver.plan_code == "comfort" and driver.estimate == theirs
    assert driver.incl_vat != visitor.incl_vat  # comfort: no session fee, a lower markup


def test_unknown_prices_say_why(db_session):
    energy_tariff("USD", "0.40", currency="USD")
    energy_tariff("GONE", "0.40")
    delete_tariff("NL", "TCP", "GONE")
    add_location(*near(1), evse("E1", connector(TYPE2_11KW)), name="no tariff id")
    add_location(*near(2), evse("E1", connector(TYPE2_11KW, tariff_ids=["NEVER-SENT"])), name="unknown tariff")
    add_location(*near(3), evse("E1", connector(TYPE2_11KW, tariff_ids=["GONE"])), name="deleted tariff")
    add_location(*near(4), evse("E1", connector(TYPE2_11KW, tariff_ids=["USD"])), name="dollars")
    add_location(*near(5), evse("E1", connector(TYPE2_11KW, tariff_ids=["GONE", "USD"])), name="first in force")
    page = search_nearby(NearbyQuery(*HERE, radius_km=2), at=utcnow())
    found = {item.name: item for item in page.items}
    for name in ("no tariff id", "unknown tariff", "deleted tariff"):
        price = found[name].price
        assert price.unknown == PriceUnknown.NO_TARIFF and not price.known
        assert (price.incl_vat, price.currency, price.estimate) == (None, None, None)
        assert found[name].tariff is None
    for name in ("dollars", "first in force"):
        assert found[name].price.unknown == PriceUnknown.CURRENCY
        assert "USD" in found[name].price.detail


def test_country_without_vat_rate(db_session):
    energy_tariff("T1", "0.40")
    add_location(
        *near(1), evse("E1", connector(TYPE2_11KW, tariff_ids=["T1"])), country="USA", time_zone="America/New_York"
    )
    assert one().price.unknown == PriceUnknown.COUNTRY


def test_cheapest_first_unknown_last_then_by_distance(db_session):
    energy_tariff("CHEAP", "0.30")
    energy_tariff("DEAR", "0.50")
    add_location(*near(1), evse("E1", connector(TYPE2_11KW, tariff_ids=["DEAR"])), name="dear, nearest")
    add_location(*near(2), evse("E1", connector(TYPE2_11KW)), name="unknown")
    add_location(*near(3), evse("E1", connector(TYPE2_11KW, tariff_ids=["CHEAP"])), name="cheap, near")
    add_location(*near(4), evse("E1", connector(TYPE2_11KW, tariff_ids=["CHEAP"])), name="cheap, far")
    add_location(
        *near(5),
        evse("E1", connector(TYPE2_11KW, tariff_ids=["DEAR"])),
        evse("E2", connector(CCS_150KW, tariff_ids=["CHEAP"])),
        name="cheap only on DC",
    )
    at = utcnow()
    by_price = search_nearby(NearbyQuery(*HERE, radius_km=2, sort=SortOrder.PRICE), at=at)
    assert [item.name for item in by_price.items] == [
        "cheap, near",
        "cheap, far",
        "cheap only on DC",
        "dear, nearest",
        "unknown",
    ]
    ac_only = search_nearby(
        NearbyQuery(
            *HERE,
            radius_km=2,
            sort=SortOrder.PRICE,
            filters=Filters(min_power_kw=Decimal(0), connector_types=frozenset({"IEC_62196_T2"})),
        ),
        at=at,
    )
    assert [item.name for item in ac_only.items] == [
        "cheap, near",
        "cheap, far",
        "dear, nearest",
        "cheap only on DC",
        "unknown",
    ]
    # Pages of a price-sorted search follow each other too.
    first = search_nearby(NearbyQuery(*HERE, radius_km=2, sort=SortOrder.PRICE, limit=2), at=at)
    second = search_nearby(
        NearbyQuery(*HERE, radius_km=2, sort=SortOrder.PRICE, limit=2, cursor=first.next_cursor), at=at
    )
    third = search_nearby(
        NearbyQuery(*HERE, radius_km=2, sort=SortOrder.PRICE, limit=2, cursor=second.next_cursor), at=at
    )
    assert [i.name for p in (first, second, third) for i in p.items] == [i.name for i in by_price.items]
    assert third.next_cursor is None


@pytest.mark.parametrize("moment", ["2026-03-01T00:00:00Z", "2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"])
def test_version_in_force_is_roamings_rule(db_session, moment):
    """The finder picks among versions it already read with the same rule as roaming's tariff_in_force."""
    received = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    for stamp, start, end in (
        ("2026-01-01T00:00:00Z", None, "2026-06-01T00:00:00Z"),
        ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z", None),
        ("2026-08-01T00:00:00Z", "2026-12-01T00:00:00Z", None),
    ):
        data = {**DAY_NIGHT, "last_updated": stamp}
        if start:
            data["start_date_time"] = start
        if end:
            data["end_date_time"] = end
        store_tariff(data, partner=None, country_code="NL", party_id="TCP", received_at=received)
        received += dt.timedelta(days=30)
    at = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    versions = tariff_versions("NL", "TCP", "DAY-NIGHT")
    assert version_in_force(versions, at) == tariff_in_force("NL", "TCP", "DAY-NIGHT", at)
    db.session.query(TariffVersion).update({"deleted_at": at - dt.timedelta(days=1)})
    assert version_in_force(tariff_versions("NL", "TCP", "DAY-NIGHT"), at) is None
    assert tariff_in_force("NL", "TCP", "DAY-NIGHT", at) is None
