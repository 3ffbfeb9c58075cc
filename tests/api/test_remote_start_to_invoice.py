"""The driver's app, end to end over real HTTP: sign in, remote start, the live cost so far, stop, the CDR, the
month's invoice run, and the session's line on the invoice at the price the app showed last, to the cent.

Our app runs as a live server on a loopback port (its own threads and connections: every step commits). The CPO
is the fake CPO server (it receives our START_SESSION and STOP_SESSION over OCPI and answers them) plus the test
acting as the CPO's backend over HTTP with the token C of the credentials handshake: it posts the charge point's
CommandResult to our ``response_url``, PUTs the Session and PATCHes it (appending charging periods, as OCPI's PATCH
does) as the car charges, and POSTs the CDR. The phone is the test too, calling ``/api/v1`` with the bearer token
it got from ``POST /api/v1/auth/token``.

Unlike ``tests/roaming/test_remote_start_end_to_end.py`` (energy and flat fee, the invoice composed directly), the
tariff here also charges by the minute, with step sizes, so the time the app saw counts; and the invoice comes from
the month's run (``flask billing run``: preview, approve, finalize). A run covers only a month that has ended, so
the run's clock is set to the morning of the next month's first day, as finance would run it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from app.billing.models import Invoice
from app.cards.models import Card, CardStatus
from app.charging.models import Cdr
from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.rating.models import SessionCharge
from app.timestamps import ocpi_timestamp
from tests.browser.conftest import LiveServer, make_live_app, running
from tests.factories import PASSWORD, make_user, one_connector_location
from tests.rating.live_sessions import cdr_object, period, session_object
from tests.roaming.conftest import fake_cpo  # noqa: F401  (fixture)
from tests.roaming.fake_cpo import FakeCpo
from tests.roaming.token_fixtures import card_in
from tests.test_spine import _register

# Per kWh (to the Wh), per hour (to the minute) and a start fee: the three ways a CPO prices a session.
TARIFF = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "AC-TIME",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.35, "vat": 21.0, "step_size": 1},
                {"type": "TIME", "price": 1.20, "vat": 21.0, "step_size": 60},
                {"type": "FLAT", "price": 0.30, "vat": 21.0, "step_size": 1},
            ]
        }
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}
WHERE = {"location": {"country_code": "NL", "party_id": "TCP", "id": "LOC-EST"}, "evse_uid": "E1"}
SESSION_URL = "/ocpi/2.2.1/sessions/NL/TCP/RS-TIME"


def _location() -> dict[str, Any]:
    data = one_connector_location("AC-TIME")
    data["name"] = "Stationsplein P1"
    data["evses"] = [{**data["evses"][0], "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"]}]
    return data


@pytest.fixture
def live(app: Flask, tmp_path: Path) -> Iterator[LiveServer]:
    live_app = make_live_app(app, tmp_path)
    with running(live_app, tmp_path / "outbox") as server:
        live_app.config["OCPI_BASE_URL"] = server.url  # where the CPO posts command results
        yield server


class Phone:
    """The driver's app: JSON over HTTP, signed in with email and password like the app does."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> requests.Response:
        return self.http.request(method, self.base_url + path, json=body, headers=headers, timeout=10)

    def sign_in(self, email: str, password: str) -> None:
        answer = self.call("POST", "/api/v1/auth/token", {"email": email, "password": password, "device_name": "Pixel"})
        assert answer.status_code == 201, answer.text
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"


def _driver(app: Flask) -> dict[str, Any]:
    with app.app_context():
        user = make_user(email="timed@example.com", full_name="Tim Timed")
        for stretch in plan_services.history(user.account.id):  # pay as you go since January
            stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        card = card_in(CardStatus.ACTIVE, user=user)  # issued, shipped, activated; with a payment method
        db.session.commit()
        return {"email": user.email, "account_id": user.account.id, "card_id": card.id, "uid": card.uid}


def _path(url: str) -> str:
    return url[url.index("/ocpi/") :]


def _first_morning_of_next_month(moment: dt.datetime) -> dt.datetime:
    local = moment.astimezone(plan_services.billing_zone())
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return dt.datetime(year, month, 1, 7, tzinfo=plan_services.billing_zone()).astimezone(dt.UTC)


def _run_month(app: Flask, period: str, monkeypatch: pytest.MonkeyPatch, at: dt.datetime) -> None:
    """``flask billing run`` for ``period`` as finance runs it (preview, approve, finalize; no delivery), with the
    run's clock at ``at``: what decides that the month has ended, the issue and finalization dates."""
    import app.billing.invoicing.composition as composition
    import app.billing.invoicing.freezing as freezing
    import app.billing.invoicing.invoices as invoices
    import app.billing.runs.holds as holds
    import app.billing.runs.items as run_items
    import app.billing.runs.periods as run_periods
    import app.billing.runs.services as run_services

    for module in (run_services, run_periods, run_items, invoices, freezing, composition, holds):
        monkeypatch.setattr(module, "utcnow", lambda: at)
    cli = app.test_cli_runner()
    for args in (["run", "--period", period, "--dry-run"], ["approve", "--period", period]):
        result = cli.invoke(args=["billing", *args])
        assert result.exit_code == 0, result.output
    result = cli.invoke(args=["billing", "run", "--period", period, "--no-deliver"])
    assert result.exit_code == 0, result.output


def test_the_app_starts_watches_stops_and_the_invoice_says_what_it_showed(
    live: LiveServer,
    fake_cpo: FakeCpo,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = live.app
    cpo = _register(live, fake_cpo)
    assert cpo.call("PUT", "/ocpi/2.2.1/tariffs/NL/TCP/AC-TIME", TARIFF).status_code == 201
    assert cpo.call("PUT", "/ocpi/2.2.1/locations/NL/TCP/LOC-EST", _location()).status_code == 201
    driver = _driver(app)
    phone = Phone(live.url)
    phone.sign_in(driver["email"], PASSWORD)

    # The phone starts charging with the driver's card; START_SESSION goes to the CPO over OCPI.
    started = phone.call("POST", "/api/v1/sessions/start", {**WHERE, "card_id": driver["card_id"]})
    assert started.status_code == 202, started.text
    command = started.json()
    assert (command["type"], command["state"]) == ("START_SESSION", "pending")
    [sent] = fake_cpo.state["commands"]
    assert sent["command"] == "START_SESSION" and sent["body"]["token"]["uid"] == driver["uid"]
    assert (sent["body"]["location_id"], sent["body"]["evse_uid"]) == ("LOC-EST", "E1")

    # The charge point took it: the CPO posts its CommandResult to our response_url.
    assert cpo.call("POST", _path(sent["body"]["response_url"]), {"result": "ACCEPTED"}).status_code == 200
    assert phone.call("GET", f"/api/v1/commands/{command['id']}").json()["state"] == "accepted"

    # The CPO reports the session (PUT), then appends a charging period per update (PATCH) as the car charges.
    start = utcnow().replace(microsecond=0)
    with app.app_context():
        card = db.session.get_one(Card, driver["card_id"])
        opened = session_object(
            card,
            "RS-TIME",
            start,
            kwh=0,
            last_updated=start,
            auth_method="COMMAND",
            authorization_reference=sent["body"]["authorization_reference"],
        )
    first = period(start, kwh=4.137, hours=0.25, POWER=16.5)
    second = period(start + dt.timedelta(minutes=15), kwh=6.915, hours=0.45, POWER=15.4)
    assert cpo.call("PUT", SESSION_URL, opened).json()["status_code"] == 1000
    [shown] = phone.call("GET", "/api/v1/sessions/active").json()["items"]
    assert (shown["status"], shown["kwh"]) == ("ACTIVE", "0.0000")
    # Nothing charged yet: the CPO's start fee 0.30 and our session fee 0.35 = 0.65, + 21 % VAT = 0.7865.
    assert shown["cost_so_far"]["total"]["amount_minor"] == 79

    quarter = start + dt.timedelta(minutes=15)
    patch = {"kwh": 4.137, "charging_periods": [first], "last_updated": ocpi_timestamp(quarter)}
    assert cpo.call("PATCH", SESSION_URL, patch).json()["status_code"] == 1000
    early = phone.call("GET", "/api/v1/sessions/active")
    assert early.json()["items"][0]["kwh"] == "4.1370"
    end = start + dt.timedelta(minutes=42)
    patch = {"kwh": 11.052, "charging_periods": [second], "last_updated": ocpi_timestamp(end)}
    assert cpo.call("PATCH", SESSION_URL, patch).json()["status_code"] == 1000
    polled = phone.call("GET", "/api/v1/sessions/active", **{"If-None-Match": early.headers["ETag"]})
    assert polled.status_code == 200
    [last_shown] = polled.json()["items"]
    assert (last_shown["kwh"], last_shown["duration_seconds"], last_shown["current_power_kw"]) == (
        "11.0520",
        42 * 60,
        "15.4",
    )
    # By hand: CPO 11.052 kWh × 0.35 = 3.8682, 0.7 h × 1.20 = 0.84, start 0.30: 5.0082; pay as you go
    # 11.052 × 0.05 + 0.35 = 0.9026; 5.9108 excl. VAT → € 5.91; + 21 % = 1.241268 → 7.152068 → € 7.15.
    cost = last_shown["cost_so_far"]
    assert (cost["source"], cost["basis"]) == ("frozen_tariff", "charging_periods")
    assert [cost[name]["amount_minor"] for name in ("operator_price", "our_fees", "total_excl_vat", "total")] == [
        501,
        90,
        591,
        715,
    ]

    # The driver stops from the phone; the charge point stops; the CPO closes the session and sends the CDR.
    stopped = phone.call("POST", f"/api/v1/sessions/{last_shown['id']}/stop")
    assert stopped.status_code == 202, stopped.text
    stop_sent = fake_cpo.state["commands"][1]
    assert (stop_sent["command"], stop_sent["body"]["session_id"]) == ("STOP_SESSION", "RS-TIME")
    assert phone.call("GET", "/api/v1/sessions/active").json()["items"][0]["stop_request"] == {
        "command_id": stopped.json()["id"],
        "state": "pending",
    }
    assert cpo.call("POST", _path(stop_sent["body"]["response_url"]), {"result": "ACCEPTED"}).status_code == 200
    assert phone.call("GET", f"/api/v1/commands/{stopped.json()['id']}").json()["state"] == "accepted"
    done = {"status": "COMPLETED", "end_date_time": ocpi_timestamp(end), "last_updated": ocpi_timestamp(end)}
    assert cpo.call("PATCH", SESSION_URL, done).json()["status_code"] == 1000
    assert phone.call("GET", "/api/v1/sessions/active").json()["items"] == []
    with app.app_context():
        card = db.session.get_one(Card, driver["card_id"])
        cdr = cdr_object(
            card, "CDR-RS-TIME", "RS-TIME", start, end, kwh=11.052, periods=[first, second], cpo_total_excl_vat=5.01
        )
    posted = cpo.call("POST", "/ocpi/2.2.1/cdrs", cdr)
    assert posted.status_code in (200, 201), posted.text
    with app.app_context():
        stored = db.session.scalar(select(Cdr).where(Cdr.ocpi_id == "CDR-RS-TIME"))
        charge = db.session.scalar(select(SessionCharge).where(SessionCharge.cdr_id == stored.id))
        assert charge is not None and charge.tariff_source == "frozen_tariff"  # rated as soon as it was stored

    # The month's run, on the first morning of the next month.
    with app.app_context():
        run_at = _first_morning_of_next_month(start)
        local = start.astimezone(plan_services.billing_zone())
    _run_month(app, f"{local.year:04d}-{local.month:02d}", monkeypatch, run_at)
    with app.app_context():
        invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == driver["account_id"]))
        assert invoice is not None and invoice.number and invoice.issue_date == run_at.date()
        [line] = [line for line in invoice.lines if line.details.get("session")]
        # The line is the charge rounded once to cents, VAT 21 % on it (591 × 0.21 = 124.11 → 124): the app's figures.
        assert line.amount_minor == cost["total_excl_vat"]["amount_minor"]
        assert invoice.total_minor == cost["total"]["amount_minor"]

    # The app's own history shows the session at that price too.
    history = phone.call("GET", "/api/v1/sessions").json()["items"]
    assert [item["total"]["amount_minor"] for item in history] == [cost["total"]["amount_minor"]]
