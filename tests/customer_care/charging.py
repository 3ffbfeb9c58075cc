"""A driver's charging as it really arrives, for the support tests: the CPO (``tests.roaming.conftest.partner``,
NL/TCP) publishes a tariff and a location over OCPI, asks us to authorize the card at an EVSE, reports the session
and sends the CDR, which is rated as in production (eagerly, without a broker)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from app.audit.services import Actor
from app.cards import services as card_services
from app.cards.models import Card
from app.charging.models import Cdr
from app.extensions import db
from app.plans.models import Subscription
from app.rating.models import SessionCharge
from app.roaming.models import Partner, PartnerParty
from tests.factories import add_stock, give_payment_method, make_user

TARIFF_ID = "AC-SUPPORT"
LOCATION_ID = "LOC-SUPPORT"
TARIFF = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": TARIFF_ID,
    "currency": "EUR",
    "type": "REGULAR",
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
LOCATION = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": LOCATION_ID,
    "publish": True,
    "name": "Station Gent-Sint-Pieters",
    "address": "Koningin Maria Hendrikaplein 1",
    "city": "Gent",
    "postal_code": "9000",
    "country": "BEL",
    "coordinates": {"latitude": "51.035896", "longitude": "3.710675"},
    "time_zone": "Europe/Brussels",
    "last_updated": "2026-01-01T00:00:00Z",
    "evses": [
        {
            "uid": "EVSE-7",
            "evse_id": "BE*TCP*E0007",
            "status": "AVAILABLE",
            "last_updated": "2026-01-01T00:00:00Z",
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "SOCKET",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 230,
                    "max_amperage": 32,
                    "max_electric_power": 22000,
                    "tariff_ids": [TARIFF_ID],
                    "last_updated": "2026-01-01T00:00:00Z",
                }
            ],
        }
    ],
}
OPERATOR_NAME = "Allego Gent"  # the CPO's business name, from its credentials roles


@dataclass
class Charged:
    card: Card
    cdr: Cdr
    charge: SessionCharge | None
    reference: str | None


CUSTOMER_SINCE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def driver_with_card(**profile: object):  # type: ignore[no-untyped-def]
    """A driver with an active RFID card (through the card services), on pay as you go since 1 January 2026 (so
    the sessions of the tests, in October, have a plan to be priced with)."""
    user = make_user(**profile)
    for subscription in db.session.scalars(select(Subscription).where(Subscription.account_id == user.account.id)):
        subscription.starts_at = CUSTOMER_SINCE
    give_payment_method(user.account)
    add_stock(1, start=50_000 + user.id * 10)
    card = card_services.ship_card(card_services.order_card(user.account, Actor.of(user)), Actor.system("ops"))
    card_services.activate_card(user.account, card.visual_number, Actor.of(user))
    db.session.flush()
    return user, card


def publish_network(ocpi, partner: Partner) -> None:  # type: ignore[no-untyped-def]
    """The CPO names itself (its credentials role) and publishes its tariff and location over OCPI."""
    partner.parties.append(PartnerParty(country_code="NL", party_id="TCP", role="CPO", name=OPERATOR_NAME))
    db.session.flush()
    assert ocpi.put(f"/ocpi/2.2.1/tariffs/NL/TCP/{TARIFF_ID}", json=TARIFF).status_code in (200, 201)
    assert ocpi.put(f"/ocpi/2.2.1/locations/NL/TCP/{LOCATION_ID}", json=LOCATION).status_code in (200, 201)


def _token(card: Card) -> dict[str, Any]:
    return {"country_code": "BE", "party_id": "VLT", "uid": card.uid, "type": "RFID", "contract_id": card.contract_id}


def charge_once(
    ocpi,  # type: ignore[no-untyped-def]
    card: Card,
    session_id: str,
    start: dt.datetime,
    kwh: float,
    hours: float = 1.0,
    *,
    authorize: bool = True,
    send_cdr: bool = True,
) -> Charged | None:
    """Authorize at EVSE-7, report the session, then (unless ``send_cdr`` is false) the CDR: all over OCPI."""
    reference = None
    if authorize:
        answer = ocpi.post(
            f"/ocpi/2.2.1/tokens/{card.uid}/authorize?type=RFID",
            json={"location_id": LOCATION_ID, "evse_uids": ["EVSE-7"]},
        ).get_json()["data"]
        reference = answer["authorization_reference"]
    end = start + dt.timedelta(hours=hours)
    session = {
        "country_code": "NL",
        "party_id": "TCP",
        "id": session_id,
        "start_date_time": start.isoformat(),
        "kwh": kwh,
        "cdr_token": _token(card),
        "auth_method": "AUTH_REQUEST" if authorize else "WHITELIST",
        **({"authorization_reference": reference} if reference else {}),
        "location_id": LOCATION_ID,
        "evse_uid": "EVSE-7",
        "connector_id": "1",
        "currency": "EUR",
        "status": "COMPLETED" if send_cdr else "ACTIVE",
        **({"end_date_time": end.isoformat()} if send_cdr else {}),
        "last_updated": (end if send_cdr else start).isoformat(),
    }
    assert ocpi.put(f"/ocpi/2.2.1/sessions/NL/TCP/{session_id}", json=session).status_code in (200, 201)
    if not send_cdr:
        return None
    cpo_total = round(kwh * 0.39 + 0.25, 2)
    cdr = {
        "country_code": "NL",
        "party_id": "TCP",
        "id": f"CDR-{session_id}",
        "start_date_time": start.isoformat(),
        "end_date_time": end.isoformat(),
        "session_id": session_id,
        "cdr_token": _token(card),
        "auth_method": "AUTH_REQUEST" if authorize else "WHITELIST",
        **({"authorization_reference": reference} if reference else {}),
        "cdr_location": {
            "id": LOCATION_ID,
            "name": LOCATION["name"],
            "address": LOCATION["address"],
            "city": "Gent",
            "postal_code": "9000",
            "country": "BEL",
            "coordinates": LOCATION["coordinates"],
            "evse_uid": "EVSE-7",
            "evse_id": "BE*TCP*E0007",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": start.isoformat(),
                "tariff_id": TARIFF_ID,
                "dimensions": [{"type": "ENERGY", "volume": kwh}, {"type": "TIME", "volume": hours}],
            }
        ],
        "total_cost": {"excl_vat": cpo_total, "incl_vat": round(cpo_total * 1.21, 2)},
        "total_energy": kwh,
        "total_time": hours,
        "last_updated": end.isoformat(),
    }
    response = ocpi.call("POST", "/ocpi/2.2.1/cdrs", json=cdr)
    assert response.status_code in (200, 201), response.get_json()
    db.session.expire_all()
    stored = db.session.scalar(select(Cdr).where(Cdr.ocpi_id == f"CDR-{session_id}"))
    assert stored is not None
    charge = db.session.scalar(select(SessionCharge).where(SessionCharge.cdr_id == stored.id))
    return Charged(card=card, cdr=stored, charge=charge, reference=reference)
