"""The live session in a real browser at phone width: the dashboard's cost so far follows the CPO's updates by
itself (static/js/live_session.js, no reload), the stop button shows the request until the charge point answers,
and the start page sends a start whose answer appears on its own. Screenshots land in /tmp (a2_*.png)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.cards.models import Card, CardStatus
from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.roaming.models import Command, Partner, PartnerStatus
from app.roaming.ocpi.auth import hash_token
from app.roaming.receive.sessions import patch_session, store_session
from app.roaming.send.commands import record_result
from app.timestamps import ocpi_timestamp
from tests.browser.conftest import LiveServer, make_live_app, running
from tests.factories import make_user
from tests.rating.live_sessions import period, session_object
from tests.roaming.conftest import fake_cpo  # noqa: F401  (fixture)
from tests.roaming.fake_cpo import FakeCpo
from tests.roaming.remote_fixtures import remote_place
from tests.roaming.token_fixtures import card_in

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def live(app: Flask, tmp_path: Path) -> Iterator[LiveServer]:
    live_app = make_live_app(app, tmp_path, LIVE_SESSION_POLL_SECONDS=2, COMMAND_POLL_SECONDS=2)
    with running(live_app, tmp_path / "outbox") as server:
        live_app.config["OCPI_BASE_URL"] = server.url
        yield server


def _setup(live: LiveServer, cpo: FakeCpo, language: str) -> dict[str, Any]:
    with live.app.app_context():
        partner = Partner(
            name="Test CPO",
            country_code="NL",
            party_id="TCP",
            status=PartnerStatus.REGISTERED,
            incoming_token_hash=hash_token("browser-cpo-token"),
            outgoing_token="browser-token-for-the-cpo",
            registered_at=utcnow(),
            version="2.2.1",
            endpoints=[],
        )
        db.session.add(partner)
        db.session.flush()
        remote_place(partner, cpo)
        user = make_user(email=f"live.{language}@example.com", full_name="Lies Laadpaal", language=language)
        for stretch in plan_services.history(user.account.id):
            stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        card = card_in(CardStatus.ACTIVE, user=user)
        db.session.commit()
        return {"partner_id": partner.id, "card_id": card.id, "email": user.email}


def _log_in(page: Any, base_url: str, email: str) -> None:
    page.goto(base_url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "correct-horse-battery")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.wait_for_url("**/dashboard")


def _charge(live: LiveServer, ids: dict[str, Any], kwh: float, at: dt.datetime, start: dt.datetime) -> None:
    with live.app.app_context():
        partner = db.session.get_one(Partner, ids["partner_id"])
        card = db.session.get_one(Card, ids["card_id"])
        if kwh == 0:
            store_session(partner, session_object(card, "S-WEB", start, kwh=0, last_updated=at))
        else:
            periods = [period(start, kwh=kwh, hours=(at - start).total_seconds() / 3600, POWER=11)]
            patch = {"kwh": kwh, "charging_periods": periods, "last_updated": ocpi_timestamp(at)}
            patch_session(partner, "NL", "TCP", "S-WEB", patch)
        db.session.commit()


def test_the_dashboard_follows_the_session_and_stops_it(live, browser, fake_cpo):  # noqa: F811
    ids = _setup(live, fake_cpo, "nl")
    start = utcnow().replace(microsecond=0) - dt.timedelta(minutes=40)
    _charge(live, ids, 0, start, start)
    page = browser.new_context(locale="nl-BE", viewport=PHONE).new_page()
    _log_in(page, live.url, ids["email"])
    panel = page.locator("#charging-now")
    assert "0,00 kWh" in panel.inner_text()

    # The CPO reports 7.5 kWh: the page shows it without a reload. 7.5 × 0.39 + 0.25 = 3.175; payg 0.725; 3.90 + 21 %.
    _charge(live, ids, 7.5, start + dt.timedelta(minutes=40), start)
    panel.get_by_text("7,50 kWh").wait_for(timeout=10_000)  # (a locator: CSP forbids evaluating strings)
    text = panel.inner_text()
    assert "€ 4,72" in text.replace("\xa0", " ") and "40 min" in text
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing wider than the phone
    page.screenshot(path="/tmp/a2_dashboard_nl.png", full_page=True)

    page.get_by_role("button", name="Laden stoppen").click()
    page.wait_for_url("**/dashboard#charging-now")
    assert panel.locator(".request-state--pending .spinner").count() == 1  # "stopping: waiting for the charge point"
    assert panel.get_by_role("button", name="Laden stoppen").count() == 0
    with live.app.app_context():
        command = db.session.scalar(select(Command).where(Command.command == "STOP_SESSION"))
        record_result(
            db.session.get_one(Partner, ids["partner_id"]), "STOP_SESSION", command.uid, {"result": "ACCEPTED"}
        )
        db.session.commit()
    panel.locator(".request-state--accepted").wait_for(timeout=10_000)
    page.screenshot(path="/tmp/a2_dashboard_stopped_nl.png", full_page=True)
    assert [c["command"] for c in fake_cpo.state["commands"]] == ["STOP_SESSION"]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_start_page_sends_the_start_and_shows_the_answer(live, browser, fake_cpo, language):  # noqa: F811
    ids = _setup(live, fake_cpo, language)
    page = browser.new_context(locale=language, viewport=PHONE).new_page()
    _log_in(page, live.url, ids["email"])
    page.goto(live.url + "/charging/start?location=NL/TCP/LOC-EST&evse=E1")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=f"/tmp/a2_start_{language}.png", full_page=True)
    page.locator("input[type=submit]").click()
    page.wait_for_url("**/charging/commands/*")
    assert page.locator(".spinner").count() == 1
    with live.app.app_context():
        command = db.session.scalar(select(Command).where(Command.command == "START_SESSION"))
        record_result(
            db.session.get_one(Partner, ids["partner_id"]), "START_SESSION", command.uid, {"result": "ACCEPTED"}
        )
        db.session.commit()
    page.locator(".request-state--accepted").wait_for(timeout=10_000)
    assert page.locator(".spinner").count() == 0
    page.screenshot(path=f"/tmp/a2_started_{language}.png", full_page=True)
    [sent] = fake_cpo.state["commands"]
    assert sent["command"] == "START_SESSION" and sent["body"]["evse_uid"] == "E1"
