"""A remote start from the app, end to end over real HTTP, to the invoice: the price the app showed at the end is the
price on the invoice, to the cent.

Our app runs as a live server on a loopback port (its own threads and connections: every step commits for real).
The CPO is the fake CPO server (it receives our START_SESSION and STOP_SESSION over OCPI and answers them) plus
the test acting as the CPO's backend over HTTP with the token it got from the credentials handshake: it posts the
charge point's CommandResult to the ``response_url`` of our command, PUTs and PATCHes the Session as the car
charges, and POSTs the CDR. The driver's app is the test too, calling ``/api/v1`` with a device's bearer token.

Times: the CPO's session starts when our command is sent; its later updates are dated 15 and 30 minutes on (the
CPO's clock runs ahead so that the test need not wait). The monthly run invoices only months that have ended, so
the invoice of this month is composed and finalized by the functions the run calls for each batch of accounts
(``compose_many``, ``finalize_compositions``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from app.accounts import api_tokens
from app.accounts.models import Account
from app.api import register_api
from app.billing.invoicing.composition import compose_many
from app.billing.invoicing.invoices import finalize_compositions
from app.billing.models import Invoice
from app.cards.models import Card, CardStatus
from app.charging.models import Cdr
from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.rating.models import SessionCharge
from app.timestamps import ocpi_timestamp
from tests.browser.conftest import LiveServer, make_live_app, running
from tests.factories import make_user
from tests.rating.live_sessions import cdr_object, period, session_object
from tests.roaming.conftest import fake_cpo  # noqa: F401  (fixture)
from tests.roaming.fake_cpo import FakeCpo
from tests.roaming.remote_fixtures import TARIFF, location_object
from tests.roaming.token_fixtures import card_in
from tests.test_spine import _register


@pytest.fixture
def live(app: Flask, tmp_path: Path) -> Iterator[LiveServer]:
    live_app = make_live_app(app, tmp_path)
    if "api_cards" not in live_app.blueprints:  # until create_app wires the API itself
        register_api(live_app)
    with running(live_app, tmp_path / "outbox") as server:
        live_app.config["OCPI_BASE_URL"] = server.url  # where the CPO posts command results
        yield server


class App:
    """The driver's phone: the JSON API with its bearer token."""

    def __init__(self, base_url: str, access_token: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {access_token}"

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> requests.Response:
        return self.http.request(method, self.base_url + path, json=body, headers=headers, timeout=10)


def _driver(app: Flask, base_url: str) -> tuple[App, dict[str, Any]]:
    with app.app_context():
        user = make_user(email="remote@example.com", full_name="Rik Remote")
        for stretch in plan_services.history(user.account.id):  # pay as you go since January
            stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        card = card_in(CardStatus.ACTIVE, user=user)  # issued, shipped, activated; with a payment method
        token = api_tokens.sign_in_device(user, "Rik's phone").access_token
        db.session.commit()
        return App(base_url, token), {"account_id": user.account.id, "card_id": card.id, "uid": card.uid}


def _path(url: str) -> str:
    return url[url.index("/ocpi/") :]


def test_remote_start_live_cost_stop_cdr_and_invoice(live: LiveServer, fake_cpo: FakeCpo) -> None:  # noqa: F811
    app = live.app
    cpo = _register(live, fake_cpo)
    assert cpo.call("PUT", "/ocpi/2.2.1/tariffs/NL/TCP/AC-STD", TARIFF).status_code == 201
    assert cpo.call("PUT", "/ocpi/2.2.1/locations/NL/TCP/LOC-EST", location_object()).status_code == 201
    phone, driver = _driver(app, live.url)

    # The app starts a session at the charge point; we send START_SESSION to the CPO, which takes it.
    where = {"location": {"country_code": "NL", "party_id": "TCP", "id": "LOC-EST"}, "evse_uid": "E1"}
    started = phone.call("POST", "/api/v1/sessions/start", {**where, "card_id": driver["card_id"]})
    assert started.status_code == 202, started.text
    command = started.json()
    assert command["state"] == "pending"
    [sent] = fake_cpo.state["commands"]
    assert sent["command"] == "START_SESSION" and sent["body"]["token"]["uid"] == driver["uid"]

    # The charge point starts: the CPO posts the CommandResult to our response_url.
    assert cpo.call("POST", _path(sent["body"]["response_url"]), {"result": "ACCEPTED"}).status_code == 200
    assert phone.call("GET", f"/api/v1/commands/{command['id']}").json()["state"] == "accepted"

    # The CPO reports the session, then two updates as the car charges.
    start = utcnow().replace(microsecond=0)
    reference = sent["body"]["authorization_reference"]
    with app.app_context():
        card = db.session.get_one(Card, driver["card_id"])
        opened = session_object(
            card, "RS-1", start, kwh=0, last_updated=start, authorization_reference=reference, auth_method="COMMAND"
        )
        first = period(start, kwh=5.2, hours=0.25, POWER=20.8)
        second = period(start + dt.timedelta(minutes=15), kwh=7.2, hours=0.25, POWER=28.8)
    url = "/ocpi/2.2.1/sessions/NL/TCP/RS-1"
    assert cpo.call("PUT", url, opened).json()["status_code"] == 1000
    shown = phone.call("GET", "/api/v1/sessions/active").json()["items"]
    assert [item["status"] for item in shown] == ["ACTIVE"] and shown[0]["kwh"] == "0.0000"
    # Nothing charged yet: the CPO's flat fee (0.25) and our session fee (0.35), + 21 % VAT = 0.726.
    assert shown[0]["cost_so_far"]["total"]["amount_minor"] == 73

    quarter = start + dt.timedelta(minutes=15)
    patch = {"kwh": 5.2, "charging_periods": [first], "last_updated": ocpi_timestamp(quarter)}
    assert cpo.call("PATCH", url, patch).status_code == 200
    half = start + dt.timedelta(minutes=30)
    patch = {"kwh": 12.4, "charging_periods": [second], "last_updated": ocpi_timestamp(half)}
    assert cpo.call("PATCH", url, patch).status_code == 200
    polled = phone.call("GET", "/api/v1/sessions/active")
    [live_session] = polled.json()["items"]
    assert live_session["kwh"] == "12.4000" and live_session["duration_seconds"] == 1800
    assert live_session["current_power_kw"] == "28.8" and live_session["average_power_kw"] == "24.80"
    # The same figure while nothing new arrives: an empty 304.
    assert phone.call("GET", "/api/v1/sessions/active", **{"If-None-Match": polled.headers["ETag"]}).status_code == 304

    # By hand: CPO 12.4 × 0.39 + 0.25 = 5.086; pay as you go 12.4 × 0.05 + 0.35 = 0.97; 6.056 excl. VAT,
    # + 21 % = 1.27176 → 7.32776 incl. The app shows € 6.06 excl. and € 7.33 incl. VAT.
    cost = live_session["cost_so_far"]
    assert (cost["source"], cost["basis"]) == ("frozen_tariff", "charging_periods")
    assert (cost["total_excl_vat"]["amount_minor"], cost["total"]["amount_minor"]) == (606, 733)

    # The driver stops from the app; the charge point stops; the CPO closes the session and sends the CDR.
    stopped = phone.call("POST", f"/api/v1/sessions/{live_session['id']}/stop")
    assert stopped.status_code == 202, stopped.text
    stop_sent = fake_cpo.state["commands"][1]
    assert (stop_sent["command"], stop_sent["body"]["session_id"]) == ("STOP_SESSION", "RS-1")
    assert cpo.call("POST", _path(stop_sent["body"]["response_url"]), {"result": "ACCEPTED"}).status_code == 200
    assert phone.call("GET", f"/api/v1/commands/{stopped.json()['id']}").json()["state"] == "accepted"
    done = {"status": "COMPLETED", "end_date_time": ocpi_timestamp(half), "last_updated": ocpi_timestamp(half)}
    assert cpo.call("PATCH", url, done).status_code == 200
    assert phone.call("GET", "/api/v1/sessions/active").json()["items"] == []

    with app.app_context():
        card = db.session.get_one(Card, driver["card_id"])
        cdr = cdr_object(
            card, "CDR-RS-1", "RS-1", start, half, kwh=12.4, periods=[first, second], cpo_total_excl_vat=5.09
        )
    posted = cpo.call("POST", "/ocpi/2.2.1/cdrs", cdr)
    assert posted.status_code in (200, 201), posted.text

    with app.app_context():
        stored = db.session.scalar(select(Cdr).where(Cdr.ocpi_id == "CDR-RS-1"))
        charge = db.session.scalar(select(SessionCharge).where(SessionCharge.cdr_id == stored.id))
        assert charge is not None and charge.tariff_source == "frozen_tariff"  # rated as soon as it was stored
        account = db.session.get_one(Account, driver["account_id"])
        local = start.astimezone(plan_services.billing_zone())
        finalize_compositions(compose_many([account], f"{local.year:04d}-{local.month:02d}"))
        db.session.commit()
        invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == account.id))
        [line] = [line for line in invoice.lines if line.details.get("session")]
        # The invoice: the session line is the charge rounded once to cents, VAT 21 % on it: 127.26 → 127.
        assert line.amount_minor == cost["total_excl_vat"]["amount_minor"] == 606
        assert invoice.total_minor == cost["total"]["amount_minor"] == 733


def test_a_second_start_while_the_first_is_still_being_sent_is_not_sent(live: LiveServer, fake_cpo: FakeCpo) -> None:  # noqa: F811
    """Two taps on "start" from the phone: the second arrives while our first POST to the CPO is still waiting for
    its answer (the command is committed as SENDING); it gets that command back and nothing is sent twice."""
    app = live.app
    cpo = _register(live, fake_cpo)
    assert cpo.call("PUT", "/ocpi/2.2.1/tariffs/NL/TCP/AC-STD", TARIFF).status_code == 201
    assert cpo.call("PUT", "/ocpi/2.2.1/locations/NL/TCP/LOC-EST", location_object()).status_code == 201
    phone, driver = _driver(app, live.url)
    fake_cpo.misbehave["command_delay"] = 1.5  # the CPO takes its time to answer
    body = {
        "location": {"country_code": "NL", "party_id": "TCP", "id": "LOC-EST"},
        "evse_uid": "E1",
        "card_id": driver["card_id"],
    }
    answers: dict[str, requests.Response] = {}
    first = threading.Thread(target=lambda: answers.update(first=phone.call("POST", "/api/v1/sessions/start", body)))
    first.start()
    time.sleep(0.5)  # the first is recorded and being sent
    second = phone.call("POST", "/api/v1/sessions/start", body)
    first.join(timeout=10)
    assert second.status_code == 202 and answers["first"].status_code == 202
    assert second.json()["id"] == answers["first"].json()["id"]
    # Still being sent when asked (PostgreSQL); on SQLite every transaction takes the write lock (BEGIN IMMEDIATE),
    # so the second request waits for the first to record the CPO's answer: pending.
    assert second.json()["state"] in ("sending", "pending") and answers["first"].json()["state"] == "pending"
    assert len(fake_cpo.state["commands"]) == 1
