"""The estimate before charging equals what the driver is billed for the same kWh and duration."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.audit.services import Actor
from app.cards import services as card_services
from app.charging.models import Cdr, ChargingSession
from app.extensions import db
from app.plans import services as plan_services
from app.rating.estimates import estimate_for_connector
from app.rating.services import RatingError, rate_cdr
from app.roaming.receive.locations import upsert_location
from app.roaming.receive.tariffs import store_tariff, tariffs_for_connector
from tests.factories import make_user, one_connector_location

AT = dt.datetime(2026, 10, 14, 8, 0, tzinfo=dt.UTC)
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
        {"price_components": [{"type": "FLAT", "price": 0.35, "vat": 21.0, "step_size": 1}]},
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}
LOCATION = one_connector_location("DAY-NIGHT")


def test_estimate_matches_the_bill(db_session):
    store_tariff(TARIFF, partner=None, country_code="NL", party_id="TCP")
    location = upsert_location(LOCATION, partner=None, country_code="NL", party_id="TCP")
    user = make_user()
    for stretch in plan_services.history(user.account.id):
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    card = card_services.issue_app_token(user.account, Actor.of(user))

    shown = estimate_for_connector(location, "E1", "1", account=user.account, at=AT)
    # 08:00 UTC is 10:00 in Amsterdam: day price. CPO: 20 × 0.45 + 0.35 = 9.35; ours (payg) 20 × 0.05 + 0.35.
    assert shown.example_cpo.total_excl_vat == Decimal("9.3500")
    assert shown.example_driver.excl_vat == Decimal("10.7000")
    assert {component.price for component in shown.cpo_components} >= {Decimal("0.45"), Decimal("0.35")}

    # The session happens exactly as estimated; its tariff was frozen at its start.
    version = tariffs_for_connector(location, "E1", "1", AT)[0]
    session = ChargingSession(
        country_code="NL",
        party_id="TCP",
        ocpi_id="S-EST",
        card_id=card.id,
        account_id=user.account.id,
        status="COMPLETED",
        start_date_time=AT,
        kwh=Decimal(20),
        location_ocpi_id="LOC-EST",
        evse_uid="E1",
        connector_id="1",
        currency="EUR",
        frozen_tariff_id=version.id,
        data={},
        last_updated=AT,
    )
    end = AT + dt.timedelta(hours=1)
    cdr = Cdr(
        country_code="NL",
        party_id="TCP",
        ocpi_id="CDR-EST",
        session_ocpi_id="S-EST",
        card_id=card.id,
        account_id=user.account.id,
        token_uid=card.uid,
        start_date_time=AT,
        end_date_time=end,
        location_ocpi_id="LOC-EST",
        evse_uid="E1",
        country="NLD",
        currency="EUR",
        total_energy=Decimal(20),
        total_time=Decimal(1),
        total_cost_excl_vat=Decimal("9.35"),
        last_updated=end,
        data={
            "start_date_time": AT.isoformat(),
            "end_date_time": end.isoformat(),
            "currency": "EUR",
            "charging_periods": [{"start_date_time": AT.isoformat(), "dimensions": [{"type": "ENERGY", "volume": 20}]}],
        },
    )
    db.session.add_all([session, cdr])
    db.session.flush()
    charge = rate_cdr(cdr)
    assert charge.driver_excl_vat == shown.example_driver.excl_vat
    assert charge.driver_incl_vat == shown.example_driver.incl_vat


def test_estimate_at_night_and_without_tariff(db_session):
    store_tariff(TARIFF, partner=None, country_code="NL", party_id="TCP")
    location = upsert_location(LOCATION, partner=None, country_code="NL", party_id="TCP")
    payg = plan_services.current_version("payg")
    night = estimate_for_connector(location, "E1", "1", plan=payg, at=dt.datetime(2026, 10, 14, 23, tzinfo=dt.UTC))
    assert night.example_cpo.total_excl_vat == Decimal("6.1500")  # 20 × 0.29 + 0.35
    bare = {**LOCATION, "id": "LOC-BARE"}
    bare["evses"] = [
        {**LOCATION["evses"][0], "connectors": [{**LOCATION["evses"][0]["connectors"][0], "tariff_ids": []}]}
    ]
    no_tariff = upsert_location(bare, partner=None, country_code="NL", party_id="TCP")
    with pytest.raises(RatingError, match="no tariff"):
        estimate_for_connector(no_tariff, "E1", "1", plan=payg, at=AT)
