"""The whole money path in one test: a card issued from stock, authorized by a CPO over OCPI, session updates,
the CDR, the month's invoice run with the line priced exactly as by hand, the PaymentIntent in the Stripe
emulator; then a declined payment whose dunning blocks the card and pushes the token update to the CPO.

Our endpoints are called through the full WSGI stack with the partner's token; the CPO (loopback HTTP server)
and Stripe (localstripe) are real HTTP peers. Runs on SQLite and on PostgreSQL (``make test`` runs both).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from sqlalchemy import select

from app.billing.dunning import run_dunning
from app.billing.models import Invoice, PaymentState
from app.cards.models import BlockReason, Card, CardStatus
from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.roaming.models import Authorization
from app.roaming.token_push import run_push
from tests.billing.conftest import (  # noqa: F401  (fixtures)
    DECLINED_ON_CHARGE,
    intents_for,
    localstripe,
    save_method,
    stripe_app,
)
from tests.factories import add_stock, make_user
from tests.payments import stripe_js
from tests.roaming.conftest import fake_cpo, ocpi, partner  # noqa: F401  (fixtures)

OCT_START = dt.datetime(2026, 10, 14, 17, 0, tzinfo=dt.UTC)  # 19:00 in Brussels, a Wednesday

TARIFF = {
    "country_code": "NL", "party_id": "TCP", "id": "AC-STD", "currency": "EUR", "type": "REGULAR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.39, "vat": 21.0, "step_size": 1},
                                       {"type": "FLAT", "price": 0.25, "vat": 21.0, "step_size": 1}]}],
    "last_updated": "2026-01-01T00:00:00Z",
}
LOCATION = {
    "country_code": "NL", "party_id": "TCP", "id": "LOC-SPINE", "publish": True, "name": "Station Gent-Sint-Pieters",
    "address": "Koningin Maria Hendrikaplein 1", "city": "Gent", "postal_code": "9000", "country": "BEL",
    "coordinates": {"latitude": "51.035896", "longitude": "3.710675"}, "time_zone": "Europe/Brussels",
    "last_updated": "2026-01-01T00:00:00Z",
    "evses": [{"uid": "EVSE-1", "evse_id": "BE*TCP*E0001", "status": "AVAILABLE",
               "last_updated": "2026-01-01T00:00:00Z",
               "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                               "max_voltage": 230, "max_amperage": 32, "max_electric_power": 22000,
                               "tariff_ids": ["AC-STD"], "last_updated": "2026-01-01T00:00:00Z"}]}],
}


def _cdr_token(card: Card) -> dict:
    return {"country_code": "BE", "party_id": "VLT", "uid": card.uid, "type": "RFID", "contract_id": card.contract_id}


def _session(card: Card, session_id: str, start: dt.datetime, status: str = "ACTIVE", kwh: float = 0) -> dict:
    return {"country_code": "NL", "party_id": "TCP", "id": session_id, "start_date_time": start.isoformat(),
            "kwh": kwh, "cdr_token": _cdr_token(card), "auth_method": "AUTH_REQUEST", "location_id": "LOC-SPINE",
            "evse_uid": "EVSE-1", "connector_id": "1", "currency": "EUR", "status": status,
            "last_updated": start.isoformat()}


def _cdr(card: Card, cdr_id: str, session_id: str, start: dt.datetime, kwh: float, hours: float) -> dict:
    end = start + dt.timedelta(hours=hours)
    cpo_total = round(kwh * 0.39 + 0.25, 2)
    return {
        "country_code": "NL", "party_id": "TCP", "id": cdr_id, "start_date_time": start.isoformat(),
        "end_date_time": end.isoformat(), "session_id": session_id, "cdr_token": _cdr_token(card),
        "auth_method": "AUTH_REQUEST",
        "cdr_location": {"id": "LOC-SPINE", "name": "Station Gent-Sint-Pieters", "address": "Koningin Maria "
                         "Hendrikaplein 1", "city": "Gent", "postal_code": "9000", "country": "BEL",
                         "coordinates": {"latitude": "51.035896", "longitude": "3.710675"}, "evse_uid": "EVSE-1",
                         "evse_id": "BE*TCP*E0001", "connector_id": "1", "connector_standard": "IEC_62196_T2",
                         "connector_format": "SOCKET", "connector_power_type": "AC_3_PHASE"},
        "currency": "EUR",
        "charging_periods": [{"start_date_time": start.isoformat(), "tariff_id": "AC-STD",
                              "dimensions": [{"type": "ENERGY", "volume": kwh}, {"type": "TIME", "volume": hours}]}],
        "total_cost": {"excl_vat": cpo_total, "incl_vat": round(cpo_total * 1.21, 2)},
        "total_energy": kwh, "total_time": hours, "last_updated": end.isoformat(),
    }


def _month(app, period: str) -> None:  # type: ignore[no-untyped-def]
    db.session.commit()
    cli = app.test_cli_runner()
    steps = (["run", "--period", period, "--dry-run"], ["approve", "--period", period], ["run", "--period", period])
    for args in steps:
        result = cli.invoke(args=["billing", *args])
        assert result.exit_code == 0, result.output


def _charge(ocpi, card: Card, number: int, start: dt.datetime, kwh: float,  # type: ignore[no-untyped-def]  # noqa: F811
            hours: float) -> None:
    """Authorize, start, update and finish a session, then post its CDR, as the CPO does."""
    allowed = ocpi.post(f"/ocpi/2.2.1/tokens/{card.uid}/authorize?type=RFID",
                        json={"location_id": "LOC-SPINE", "evse_uids": ["EVSE-1"]})
    assert allowed.status_code == 200 and allowed.get_json()["data"]["allowed"] == "ALLOWED"
    session_url = f"/ocpi/2.2.1/sessions/NL/TCP/S{number}"
    assert ocpi.put(session_url, json=_session(card, f"S{number}", start)).get_json()["status_code"] == 1000
    midway = start + dt.timedelta(hours=hours / 2)
    patch = {"kwh": kwh / 2, "last_updated": midway.isoformat(),
             "charging_periods": [{"start_date_time": start.isoformat(),
                                   "dimensions": [{"type": "ENERGY", "volume": kwh / 2}]}]}
    assert ocpi.patch(session_url, json=patch).status_code == 200
    end = start + dt.timedelta(hours=hours)
    done = {"status": "COMPLETED", "kwh": kwh, "end_date_time": end.isoformat(), "last_updated": end.isoformat()}
    assert ocpi.patch(session_url, json=done).status_code == 200
    posted = ocpi.post("/ocpi/2.2.1/cdrs", json=_cdr(card, f"CDR{number}", f"S{number}", start, kwh, hours))
    assert posted.status_code in (200, 201) and "/ocpi/2.2.1/cdrs/" in posted.headers["Location"]


def test_the_money_path_end_to_end(app, stripe_app, client, ocpi, partner, fake_cpo, localstripe, mailbox):  # noqa: F811
    # The CPO publishes its tariff and location; we know where to push tokens.
    partner.endpoints = [{"identifier": "tokens", "role": "RECEIVER", "url": fake_cpo.url("/ocpi/cpo/2.2.1/tokens")}]
    fake_cpo.accepted_tokens.add(partner.outgoing_token)
    db.session.commit()
    assert ocpi.put("/ocpi/2.2.1/tariffs/NL/TCP/AC-STD", json=TARIFF).status_code == 200
    assert ocpi.put("/ocpi/2.2.1/locations/NL/TCP/LOC-SPINE", json=LOCATION).status_code == 200

    # A driver on pay as you go since September, with a saved card; a card issued from stock.
    user = make_user(email="spine@example.com", full_name="Sofie Spine")
    for stretch in plan_services.history(user.account.id):
        stretch.starts_at = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    save_method(user.account, localstripe, stripe_js.card("4242424242424242"))
    add_stock(1, start=31000)
    db.session.commit()
    issued = app.test_cli_runner().invoke(args=["cards", "issue", "--email", "spine@example.com"])
    assert issued.exit_code == 0, issued.output
    token = json.loads(issued.output)
    card = db.session.scalar(select(Card).where(Card.uid == token["uid"]))
    assert token["valid"] is True and card.status == CardStatus.ACTIVE

    # October: one 22.5 kWh session of 1.5 h.
    _charge(ocpi, card, 1, OCT_START, 22.5, 1.5)
    assert db.session.scalar(select(Authorization).where(Authorization.card_id == card.id)).allowed == "ALLOWED"

    _month(app, "2026-10")
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == user.account.id))
    (line,) = invoice.lines
    # By hand: CPO 22.5 × 0.39 + 0.25 = 9.025; pay as you go adds 22.5 × 0.05 = 1.125 and 0.35 per session.
    # Excl. VAT 10.50 → 1050 cents; VAT 21 % (charged in Belgium) = 220.5 → 221; total 1271.
    cpo, ours = Decimal("22.5") * Decimal("0.39") + Decimal("0.25"), Decimal("22.5") * Decimal("0.05") + Decimal("0.35")
    assert (cpo, ours) == (Decimal("9.025"), Decimal("1.475"))
    assert line.amount_minor == 1050 and line.cpo_cost_minor == 903
    assert invoice.vat_minor == 221 and invoice.total_minor == 1271
    assert line.details["session"]["tariff_source"] == "frozen_tariff"
    assert invoice.pdf is not None and invoice.emailed_at is not None
    assert mailbox.to("spine@example.com")[-1].get_payload()  # the invoice email with its PDF
    intents = intents_for(localstripe, invoice.number)
    assert len(intents) == 1 and intents[0]["amount"] == 1271 and intents[0]["status"] == "succeeded"
    assert invoice.payment_state == PaymentState.PAID

    # November: the card on file now declines every charge.
    save_method(user.account, localstripe, stripe_js.card(DECLINED_ON_CHARGE))
    _charge(ocpi, card, 2, dt.datetime(2026, 11, 3, 7, tzinfo=dt.UTC), 10.0, 1.0)
    _month(app, "2026-11")
    november = db.session.scalar(select(Invoice).where(Invoice.period == "2026-11"))
    assert november.payment_state == PaymentState.FAILED
    now = utcnow()
    for days in (3, 7, 14):
        run_dunning(now + dt.timedelta(days=days, hours=1))
    db.session.refresh(card)
    assert (card.status, card.block_reason) == (CardStatus.BLOCKED, BlockReason.PAYMENT)

    # The CPO learns it: the token update is pushed, and real-time authorization now refuses.
    run_push(now + dt.timedelta(days=15))
    pushed = [entry for entry in fake_cpo.state["tokens"] if entry["uid"] == card.uid]
    assert pushed and pushed[-1]["body"]["valid"] is False
    refused = ocpi.post(f"/ocpi/2.2.1/tokens/{card.uid}/authorize?type=RFID")
    assert refused.get_json()["data"]["allowed"] in ("BLOCKED", "NO_CREDIT")
