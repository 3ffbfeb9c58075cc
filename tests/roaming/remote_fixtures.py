"""A charge point that can be started from the app: the location LOC-EST of the fake CPO (NL/TCP), its EVSE E1
``REMOTE_START_STOP_CAPABLE`` and AVAILABLE, delivered by the registered partner whose Commands receiver is the
fake CPO. Shared by the remote start tests of the service, the API and the portal."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from app.charging.models import ChargingSession
from app.db import utcnow
from app.extensions import db
from app.roaming.models import Command, CommandState, Location, Partner, PartnerStatus
from app.roaming.receive.locations import upsert_location
from app.roaming.receive.tariffs import store_tariff
from tests.factories import one_connector_location
from tests.roaming.fake_cpo import FakeCpo
from tests.roaming.test_token_push import connect

TARIFF = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "AC-STD",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.39, "vat": 21.0, "step_size": 1},
                {"type": "FLAT", "price": 0.25, "vat": 21.0, "step_size": 1},
            ]
        }
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


def location_object(**evse: Any) -> dict[str, Any]:
    """LOC-EST with its EVSE able to start remotely; ``evse`` overrides fields of the EVSE (status, capabilities)."""
    data = one_connector_location("AC-STD")
    data["name"] = "Stationsplein P1"
    data["evses"] = [{**data["evses"][0], "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"], **evse}]
    return data


def remote_place(partner: Partner, fake_cpo: FakeCpo, **evse: Any) -> Location:
    """The partner connected to the fake CPO, and the location it delivered (flushed)."""
    connect(partner, fake_cpo)
    store_tariff(TARIFF, partner=partner, country_code="NL", party_id="TCP")
    location = upsert_location(location_object(**evse), partner=partner, country_code="NL", party_id="TCP")
    db.session.flush()
    return location


def live_session_and_stop(account_id: int, card_id: int) -> tuple[ChargingSession, Command]:
    """A session under way of the account at a partner (rows only, nothing sent) and a stop request for it: the
    objects of ``POST /api/v1/sessions/{id}/stop`` and ``GET /api/v1/commands/{id}`` (the API's isolation tests)."""
    partner = Partner(
        name="Isolation CPO", country_code="NL", party_id="ISO", status=PartnerStatus.REGISTERED, endpoints=[]
    )
    db.session.add(partner)
    db.session.flush()
    now = utcnow()
    session = ChargingSession(
        partner_id=partner.id,
        country_code="NL",
        party_id="ISO",
        ocpi_id=f"ISO-{account_id}",
        card_id=card_id,
        account_id=account_id,
        status="ACTIVE",
        start_date_time=now - dt.timedelta(minutes=10),
        kwh=Decimal("1.5"),
        location_ocpi_id="LOC-ISO",
        evse_uid="E1",
        connector_id="1",
        currency="EUR",
        data={},
        last_updated=now,
    )
    command = Command(
        uid=uuid.uuid4().hex,
        partner_id=partner.id,
        account_id=account_id,
        card_id=card_id,
        command="STOP_SESSION",
        request={"session_id": session.ocpi_id},
        state=CommandState.PENDING,
        timeout_at=now + dt.timedelta(minutes=1),
    )
    db.session.add_all([session, command])
    db.session.flush()
    return session, command
