"""The portal's charging controls: the dashboard's live session with its cost so far (polled with ETags), the stop
button and the state of the request, and the start page the finder links to (price estimate, card choice)."""

from __future__ import annotations

import datetime as dt

import pytest

from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.roaming.models import Command, CommandState
from app.roaming.receive.sessions import patch_session, store_session
from app.roaming.send.commands import record_result
from app.timestamps import ocpi_timestamp
from tests.factories import login, make_user
from tests.helpers import csrf_token_from, submit_form
from tests.rating.live_sessions import period, session_object
from tests.roaming.remote_fixtures import remote_place
from tests.roaming.token_fixtures import card_in

START_URL = "/charging/start?location=NL/TCP/LOC-EST&evse=E1"


@pytest.fixture
def charging(client, partner, fake_cpo):  # type: ignore[no-untyped-def]
    """A Dutch-speaking driver with an active card, logged in, at a charge point that starts remotely."""
    from app.cards.models import CardStatus

    location = remote_place(partner, fake_cpo)
    user = make_user(full_name="Lies Laadpaal", language="nl")
    for stretch in plan_services.history(user.account.id):  # pay as you go since before the sessions
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    card = card_in(CardStatus.ACTIVE, user=user)
    db.session.commit()
    login(client, user)
    return user, card, location


def _charge(card, partner, kwh=5, minutes=30):  # type: ignore[no-untyped-def]
    start = utcnow() - dt.timedelta(minutes=minutes)
    periods = [period(start, kwh=kwh, hours=minutes / 60, POWER=11)]
    session = store_session(
        partner, session_object(card, "S-LIVE", start, kwh=kwh, last_updated=utcnow(), periods=periods)
    )
    db.session.commit()
    return session


def test_the_dashboard_shows_the_cost_so_far_and_polls_for_it(client, charging, partner):
    _user, card, _location = charging
    _charge(card, partner)
    page = client.get("/dashboard?lang=nl").get_data(as_text=True)
    # AC-STD: 5 × 0.39 + 0.25 = 2.20; payg 5 × 0.05 + 0.35 = 0.60; 2.80 + 21 % = 3.388 → € 3,39.
    assert "Stationsplein P1" in page and "5,00 kWh" in page and "€\xa03,39" in page
    assert "30 min" in page and "11,0 kW" in page  # charging time and the power of the last period
    assert 'data-poll-url="/charging/live"' in page and "js/live_session.js" in page
    assert "<script>" not in page  # CSP: no inline script

    polled = client.get("/charging/live")
    assert polled.status_code == 200 and polled.is_json
    body = polled.get_json()
    assert body["count"] == 1 and "€\xa03,39" in body["html"] and 'name="csrf_token"' in body["html"]
    assert f'data-poll-etag="{body["version"]}"' in page  # the dashboard was rendered at the same version
    assert polled.headers["ETag"] == f'"{body["version"]}"' and polled.headers["Cache-Control"] == "no-store"
    unchanged = client.get("/charging/live", headers={"If-None-Match": polled.headers["ETag"]})
    assert unchanged.status_code == 304 and unchanged.get_data() == b""

    patch_session(
        partner, "NL", "TCP", "S-LIVE", {"kwh": 10, "last_updated": ocpi_timestamp(utcnow() + dt.timedelta(seconds=1))}
    )
    db.session.commit()
    changed = client.get("/charging/live", headers={"If-None-Match": polled.headers["ETag"]})
    assert changed.status_code == 200 and "10,00 kWh" in changed.get_json()["html"]


def test_stop_charging_shows_the_request_until_the_charge_point_answers(client, charging, partner, fake_cpo):
    _user, card, _location = charging
    session = _charge(card, partner)
    stopped = submit_form(client, f"/charging/sessions/{session.id}/stop", {}, form_url="/dashboard?lang=en")
    assert stopped.status_code == 302 and stopped.headers["Location"].endswith("/dashboard#charging-now")
    [sent] = fake_cpo.state["commands"]
    assert (sent["command"], sent["body"]["session_id"]) == ("STOP_SESSION", "S-LIVE")
    waiting = client.get("/charging/live").get_json()["html"]
    assert "Stopping: waiting for the charge point" in waiting and "Stop charging" not in waiting

    command = db.session.query(Command).one()
    record_result(partner, "STOP_SESSION", command.uid, {"result": "ACCEPTED"})
    db.session.commit()
    done = client.get("/charging/live").get_json()["html"]
    assert "The charge point stopped charging" in done


def test_a_refused_stop_is_explained_and_nothing_is_sent(client, charging, partner, fake_cpo):
    _user, card, _location = charging
    session = _charge(card, partner)
    partner.endpoints = [e for e in partner.endpoints if e["identifier"] != "commands"]
    db.session.commit()
    refused = submit_form(
        client, f"/charging/sessions/{session.id}/stop", {}, form_url="/dashboard?lang=en", follow_redirects=True
    )
    assert "cannot be reached from the app right now" in refused.get_data(as_text=True)
    assert "commands" not in fake_cpo.state and db.session.query(Command).count() == 0


def test_another_drivers_session_and_request_are_not_found(client, charging, partner, fake_cpo):
    from app.cards.models import CardStatus

    other = card_in(CardStatus.ACTIVE)
    session = _charge(other, partner)
    page = client.get("/dashboard").get_data(as_text=True)
    token = csrf_token_from(page)
    assert client.post(f"/charging/sessions/{session.id}/stop", data={"csrf_token": token}).status_code == 404
    assert client.post("/charging/sessions/999999/stop", data={"csrf_token": token}).status_code == 404
    assert "commands" not in fake_cpo.state
    command = Command(
        uid="f" * 32, partner_id=partner.id, account_id=other.account_id, command="STOP_SESSION", request={}
    )
    db.session.add(command)
    db.session.commit()
    assert client.get(f"/charging/commands/{command.id}").status_code == 404
    assert client.get(f"/charging/commands/{command.id}/state").status_code == 404


def test_the_stop_button_needs_the_csrf_token(client, charging, partner, fake_cpo):
    _user, card, _location = charging
    session = _charge(card, partner)
    assert client.post(f"/charging/sessions/{session.id}/stop").status_code == 400
    assert "commands" not in fake_cpo.state


def test_the_start_page_shows_the_price_and_the_cards_then_follows_the_request(client, charging, partner, fake_cpo):
    _user, card, _location = charging
    page = client.get(START_URL + "&lang=en").get_data(as_text=True)
    assert "Stationsplein P1" in page and "Connector 1" in page
    # AC-STD at 0.39/kWh and 0.25 a session; payg 0.05/kWh and 0.35; 20 kWh in an hour: 9.40 × 1.21 = 11.374.
    assert "€0.39" in page and "€11.37" in page
    assert card.visual_number in page and "Start charging" in page

    started = submit_form(
        client,
        "/charging/start",
        {"location": "NL/TCP/LOC-EST", "evse": "E1", "connector": "1", "card": card.id},
        form_url=START_URL,
    )
    assert started.status_code == 302
    command = db.session.query(Command).one()
    assert started.headers["Location"].endswith(f"/charging/commands/{command.id}")
    [sent] = fake_cpo.state["commands"]
    assert sent["body"]["token"]["uid"] == card.uid and sent["body"]["connector_id"] == "1"

    waiting = client.get(f"/charging/commands/{command.id}?lang=en").get_data(as_text=True)
    assert "Starting: waiting for the charge point" in waiting and "data-poll-url" in waiting
    state = client.get(f"/charging/commands/{command.id}/state")
    assert state.get_json()["final"] is False and state.get_json()["state"] == "pending"
    assert (
        client.get(
            f"/charging/commands/{command.id}/state", headers={"If-None-Match": state.headers["ETag"]}
        ).status_code
        == 304
    )

    record_result(partner, "START_SESSION", command.uid, {"result": "ACCEPTED"})
    db.session.commit()
    answered = client.get(f"/charging/commands/{command.id}/state", headers={"If-None-Match": state.headers["ETag"]})
    assert answered.status_code == 200 and answered.get_json()["final"] is True
    assert "The charge point accepted" in answered.get_json()["html"]


def test_the_start_page_says_why_a_charge_point_cannot_be_started(client, partner, fake_cpo, db_session):
    from app.cards.models import CardStatus

    remote_place(partner, fake_cpo, capabilities=["RFID_READER"])
    user = make_user()
    card_in(CardStatus.ACTIVE, user=user)
    db.session.commit()
    login(client, user)
    page = client.get(START_URL + "&lang=en").get_data(as_text=True)
    assert "cannot be started from the app" in page and 'type="submit"' not in page.split("<main")[1]
    # Posting anyway: refused with the same reason, nothing sent.
    token = csrf_token_from(client.get("/dashboard").get_data(as_text=True))
    refused = client.post(
        "/charging/start",
        data={"csrf_token": token, "location": "NL/TCP/LOC-EST", "evse": "E1", "connector": "1", "card": "1"},
    )
    assert refused.status_code in (400, 409) and "commands" not in fake_cpo.state
    assert db.session.query(Command).count() == 0


@pytest.mark.parametrize(
    "query", ["location=NL/TCP/NOPE&evse=E1", "location=NL/TCP/LOC-EST&evse=E9", "location=garbage&evse=E1", "evse=E1"]
)
def test_an_unknown_charge_point_is_not_found(client, charging, query):
    assert client.get(f"/charging/start?{query}").status_code == 404


def test_a_request_without_answer_says_to_check_the_charge_point(client, charging, partner, fake_cpo):
    _user, card, _location = charging
    submit_form(
        client,
        "/charging/start",
        {"location": "NL/TCP/LOC-EST", "evse": "E1", "connector": "1", "card": card.id},
        form_url=START_URL,
    )
    command = db.session.query(Command).one()
    command.timeout_at = utcnow() - dt.timedelta(seconds=1)  # the CPO's timeout passed without a result
    db.session.commit()
    state = client.get(f"/charging/commands/{command.id}/state?lang=en").get_json()
    assert state["state"] == CommandState.TIMEOUT.value and state["final"] is True
    assert "Check the charge point before you try again" in state["html"]


def test_after_no_answer_to_a_stop_the_driver_may_stop_again(client, charging, partner, fake_cpo):
    _user, card, _location = charging
    session = _charge(card, partner)
    submit_form(client, f"/charging/sessions/{session.id}/stop", {}, form_url="/dashboard?lang=en")
    command = db.session.query(Command).one()
    command.timeout_at = utcnow() - dt.timedelta(seconds=1)  # the CPO took it and never answered
    db.session.commit()
    html = client.get("/charging/live?lang=en").get_json()["html"]
    assert "Check the charge point before you try again" in html and "Stop charging" in html
    again = submit_form(client, f"/charging/sessions/{session.id}/stop", {}, form_url="/dashboard?lang=en")
    assert again.status_code == 302 and len(fake_cpo.state["commands"]) == 2
