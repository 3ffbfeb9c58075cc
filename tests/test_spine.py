"""The whole money path in one test, over real HTTP: a CPO registers with us through the credentials handshake,
a card is issued from stock, the CPO authorizes it over OCPI, sends session updates and the CDR, the month's
invoice run prices the line exactly as by hand, the PaymentIntent lands in the Stripe emulator; then a declined
payment whose dunning blocks the card and pushes the token update to the CPO, which is then refused.

Our app runs as a live server on a loopback port (werkzeug, its own threads and database connections: every
step commits for real, as in production); the CPO is the test (calling us with ``requests``) plus the fake CPO
server (receiving our pushes), and Stripe is localstripe. Runs on SQLite and on PostgreSQL (``make test`` runs
both). The tables are emptied afterwards, as for the browser tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from app.accounts.models import Account
from app.billing.collection.dunning_runner import run_dunning
from app.billing.models import Invoice, PaymentState
from app.cards.models import BlockReason, Card, CardStatus
from app.charging.models import Authorization
from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.roaming.send.token_push import run_push
from tests.billing.conftest import DECLINED_ON_CHARGE, intents_for, localstripe, save_method  # noqa: F401
from tests.browser.conftest import LiveServer, make_live_app, running
from tests.factories import add_stock, make_user
from tests.helpers import Mailbox
from tests.payments import stripe_js
from tests.payments.emulator import point_app_at
from tests.roaming.conftest import fake_cpo  # noqa: F401  (fixture)
from tests.roaming.fake_cpo.handshake import versions_url

TOKEN_A = "spine-token-a"
TOKEN_B = "spine-token-b-for-the-cpo"

OCT_START = dt.datetime(2026, 10, 14, 17, 0, tzinfo=dt.UTC)  # 19:00 in Brussels, a Wednesday

TARIFF = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "AC-STD",
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
    "id": "LOC-SPINE",
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
            "uid": "EVSE-1",
            "evse_id": "BE*TCP*E0001",
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
                    "tariff_ids": ["AC-STD"],
                    "last_updated": "2026-01-01T00:00:00Z",
                }
            ],
        }
    ],
}


def _cdr_token(card: Card) -> dict:
    return {"country_code": "BE", "party_id": "VLT", "uid": card.uid, "type": "RFID", "contract_id": card.contract_id}


def _session(card: Card, session_id: str, start: dt.datetime, status: str = "ACTIVE", kwh: float = 0) -> dict:
    return {
        "country_code": "NL",
        "party_id": "TCP",
        "id": session_id,
        "start_date_time": start.isoformat(),
        "kwh": kwh,
        "cdr_token": _cdr_token(card),
        "auth_method": "AUTH_REQUEST",
        "location_id": "LOC-SPINE",
        "evse_uid": "EVSE-1",
        "connector_id": "1",
        "currency": "EUR",
        "status": status,
        "last_updated": start.isoformat(),
    }


def _cdr(card: Card, cdr_id: str, session_id: str, start: dt.datetime, kwh: float, hours: float) -> dict:
    end = start + dt.timedelta(hours=hours)
    cpo_total = round(kwh * 0.39 + 0.25, 2)
    return {
        "country_code": "NL",
        "party_id": "TCP",
        "id": cdr_id,
        "start_date_time": start.isoformat(),
        "end_date_time": end.isoformat(),
        "session_id": session_id,
        "cdr_token": _cdr_token(card),
        "auth_method": "AUTH_REQUEST",
        "cdr_location": {
            "id": "LOC-SPINE",
            "name": "Station Gent-Sint-Pieters",
            "address": "Koningin Maria Hendrikaplein 1",
            "city": "Gent",
            "postal_code": "9000",
            "country": "BEL",
            "coordinates": {"latitude": "51.035896", "longitude": "3.710675"},
            "evse_uid": "EVSE-1",
            "evse_id": "BE*TCP*E0001",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": start.isoformat(),
                "tariff_id": "AC-STD",
                "dimensions": [{"type": "ENERGY", "volume": kwh}, {"type": "TIME", "volume": hours}],
            }
        ],
        "total_cost": {"excl_vat": cpo_total, "incl_vat": round(cpo_total * 1.21, 2)},
        "total_energy": kwh,
        "total_time": hours,
        "last_updated": end.isoformat(),
    }


class Cpo:
    """The CPO's side of OCPI: HTTP calls to our live server with its token, as a real CPO's platform makes."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = "Token " + base64.b64encode(token.encode()).decode()
        self.http.headers["OCPI-from-country-code"], self.http.headers["OCPI-from-party-id"] = "NL", "TCP"
        self.http.headers["OCPI-to-country-code"], self.http.headers["OCPI-to-party-id"] = "BE", "VLT"

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.base_url + path, json=body, timeout=10)


@pytest.fixture
def live(app: Flask, tmp_path: Path, localstripe) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]  # noqa: F811
    live_app = make_live_app(app, tmp_path, STRIPE_WEBHOOK_SECRET="whsec_spine")
    point_app_at(live_app, localstripe)
    with running(live_app, tmp_path / "outbox") as server:
        live_app.config["OCPI_BASE_URL"] = server.url
        yield server


def _month(app: Flask, period: str) -> None:
    cli = app.test_cli_runner()
    steps = (["run", "--period", period, "--dry-run"], ["approve", "--period", period], ["run", "--period", period])
    for args in steps:
        result = cli.invoke(args=["billing", *args])
        assert result.exit_code == 0, result.output


def _register(live: LiveServer, cpo_server) -> Cpo:  # type: ignore[no-untyped-def]
    """We add the CPO with token A; it registers through our credentials endpoint and gets token C."""
    added = live.app.test_cli_runner().invoke(
        args=[
            "roaming",
            "partner-add",
            "--name",
            "Test CPO",
            "--country-code",
            "NL",
            "--party-id",
            "TCP",
            "--role",
            "CPO",
            "--token",
            TOKEN_A,
        ]
    )
    assert added.exit_code == 0, added.output
    cpo_server.accepted_tokens.add(TOKEN_B)
    credentials = {
        "token": TOKEN_B,
        "url": versions_url(cpo_server),
        "roles": [{"role": "CPO", "party_id": "TCP", "country_code": "NL", "business_details": {"name": "Test CPO"}}],
    }
    versions = requests.get(
        live.url + "/ocpi/versions",
        timeout=10,
        headers={"Authorization": "Token " + base64.b64encode(TOKEN_A.encode()).decode()},
    )
    assert versions.status_code == 200
    registered = Cpo(live.url, TOKEN_A).call("POST", "/ocpi/2.2.1/credentials", credentials)
    assert registered.status_code == 200, registered.text
    token_c = registered.json()["data"]["token"]
    assert Cpo(live.url, TOKEN_A).call("GET", "/ocpi/2.2.1/tokens").status_code == 401  # token A is spent
    return Cpo(live.url, token_c)


def _charge(cpo: Cpo, card: Card, number: int, start: dt.datetime, kwh: float, hours: float) -> None:
    """Authorize, start, update and finish a session, then post its CDR, as the CPO does."""
    allowed = cpo.call(
        "POST",
        f"/ocpi/2.2.1/tokens/{card.uid}/authorize?type=RFID",
        {"location_id": "LOC-SPINE", "evse_uids": ["EVSE-1"]},
    )
    assert allowed.status_code == 200 and allowed.json()["data"]["allowed"] == "ALLOWED"
    assert allowed.headers["OCPI-to-party-id"] == "TCP"  # our answer is addressed back to the CPO
    session_url = f"/ocpi/2.2.1/sessions/NL/TCP/S{number}"
    assert cpo.call("PUT", session_url, _session(card, f"S{number}", start)).json()["status_code"] == 1000
    midway = start + dt.timedelta(hours=hours / 2)
    patch = {
        "kwh": kwh / 2,
        "last_updated": midway.isoformat(),
        "charging_periods": [
            {"start_date_time": start.isoformat(), "dimensions": [{"type": "ENERGY", "volume": kwh / 2}]}
        ],
    }
    assert cpo.call("PATCH", session_url, patch).status_code == 200
    end = start + dt.timedelta(hours=hours)
    done = {"status": "COMPLETED", "kwh": kwh, "end_date_time": end.isoformat(), "last_updated": end.isoformat()}
    assert cpo.call("PATCH", session_url, done).status_code == 200
    posted = cpo.call("POST", "/ocpi/2.2.1/cdrs", _cdr(card, f"CDR{number}", f"S{number}", start, kwh, hours))
    assert posted.status_code in (200, 201) and "/ocpi/2.2.1/cdrs/" in posted.headers["Location"]
    again = cpo.call("POST", "/ocpi/2.2.1/cdrs", _cdr(card, f"CDR{number}", f"S{number}", start, kwh, hours))
    assert again.status_code in (200, 201)  # the same CDR twice: stored once (checked on the invoice below)


def test_the_money_path_end_to_end(live, fake_cpo, localstripe, tmp_path):  # noqa: F811
    app = live.app
    mailbox = Mailbox(tmp_path / "outbox")
    cpo = _register(live, fake_cpo)
    # The CPO publishes its tariff and location.
    assert cpo.call("PUT", "/ocpi/2.2.1/tariffs/NL/TCP/AC-STD", TARIFF).status_code == 201  # Created
    assert cpo.call("PUT", "/ocpi/2.2.1/locations/NL/TCP/LOC-SPINE", LOCATION).status_code == 201

    with app.app_context():
        # A driver on pay as you go since September, with a saved card; a card issued from stock.
        user = make_user(email="spine@example.com", full_name="Sofie Spine")
        for stretch in plan_services.history(user.account.id):
            stretch.starts_at = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
        save_method(user.account, localstripe, stripe_js.card("4242424242424242"))
        add_stock(1, start=31000)
        account_id = user.account.id
        db.session.commit()
    issued = app.test_cli_runner().invoke(args=["cards", "issue", "--email", "spine@example.com"])
    assert issued.exit_code == 0, issued.output
    token = json.loads(issued.output)
    with app.app_context():
        card = db.session.scalar(select(Card).where(Card.uid == token["uid"]))
        assert token["valid"] is True and card.status == CardStatus.ACTIVE
        db.session.expunge(card)

    # October: one 22.5 kWh session of 1.5 h.
    _charge(cpo, card, 1, OCT_START, 22.5, 1.5)
    with app.app_context():
        assert db.session.scalar(select(Authorization).where(Authorization.card_id == card.id)).allowed == "ALLOWED"

    _month(app, "2026-10")
    with app.app_context():
        invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == account_id))
        (line,) = invoice.lines  # the CDR posted twice is on it once
        # By hand: CPO 22.5 × 0.39 + 0.25 = 9.025; pay as you go adds 22.5 × 0.05 = 1.125 and 0.35 per session.
        # Excl. VAT 10.50 → 1050 cents; VAT 21 % (charged in Belgium) = 220.5 → 221; total 1271.
        cpo_cost = Decimal("22.5") * Decimal("0.39") + Decimal("0.25")
        ours = Decimal("22.5") * Decimal("0.05") + Decimal("0.35")
        assert (cpo_cost, ours) == (Decimal("9.025"), Decimal("1.475"))
        assert line.amount_minor == 1050 and line.cpo_cost_minor == 903
        assert invoice.vat_minor == 221 and invoice.total_minor == 1271
        assert line.details["session"]["tariff_source"] == "frozen_tariff"
        assert invoice.pdf is not None and invoice.emailed_at is not None
        assert mailbox.to("spine@example.com")[0]["Subject"] == "Your invoice"  # with its PDF attached
        intents = intents_for(localstripe, invoice.number)
        assert len(intents) == 1 and intents[0]["amount"] == 1271 and intents[0]["status"] == "succeeded"
        assert invoice.payment_state == PaymentState.PAID

        # November: the card on file now declines every charge.
        save_method(db.session.get(Account, account_id), localstripe, stripe_js.card(DECLINED_ON_CHARGE))
        db.session.commit()
    _charge(cpo, card, 2, dt.datetime(2026, 11, 3, 7, tzinfo=dt.UTC), 10.0, 1.0)
    _month(app, "2026-11")
    with app.app_context():
        november = db.session.scalar(select(Invoice).where(Invoice.period == "2026-11"))
        assert november.payment_state == PaymentState.FAILED
        now = utcnow()
        for days in (3, 7, 14):
            run_dunning(now + dt.timedelta(days=days, hours=1), commit=True)
        blocked = db.session.get(Card, card.id)
        assert (blocked.status, blocked.block_reason) == (CardStatus.BLOCKED, BlockReason.PAYMENT)

        # The CPO learns it: the token update is pushed to its Tokens receiver.
        run_push(now + dt.timedelta(days=15))
        db.session.commit()
    pushed = [entry for entry in fake_cpo.state["tokens"] if entry["uid"] == card.uid]
    assert pushed and pushed[-1]["body"]["valid"] is False
    # And real-time authorization refuses it: blocked for an unpaid invoice is NO_CREDIT.
    refused = cpo.call("POST", f"/ocpi/2.2.1/tokens/{card.uid}/authorize?type=RFID")
    assert refused.status_code == 200 and refused.json()["data"]["allowed"] == "NO_CREDIT"
