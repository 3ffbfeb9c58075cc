"""The live session and remote start/stop through the API: the cost so far with ETags, a start and a stop followed
to the charge point's answer, every refusal as a problem document with its stable code, and nothing of another
driver's reachable."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.billing.models import PaymentState
from app.cards.models import BlockReason, Card, CardStatus
from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.roaming.models import Command, Partner
from app.roaming.receive.sessions import patch_session, store_session
from app.roaming.send.commands import record_result
from app.timestamps import ocpi_timestamp
from tests.api.helpers import SignedIn, call, problem
from tests.billing.conftest import finalized_invoice
from tests.rating.live_sessions import period, session_object
from tests.roaming.fake_cpo.server import FakeCpo
from tests.roaming.remote_fixtures import remote_place
from tests.roaming.token_fixtures import card_in

AT_LOC_EST = {"location": {"country_code": "NL", "party_id": "TCP", "id": "LOC-EST"}, "evse_uid": "E1"}


@pytest.fixture
def charger(driver: SignedIn, partner: Partner, fake_cpo: FakeCpo) -> Any:
    """The driver on pay as you go since January, with an active card and a payment method; the charge point."""
    for stretch in plan_services.history(driver.account.id):
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    card = card_in(CardStatus.ACTIVE, user=driver.user)
    remote_place(partner, fake_cpo)
    db.session.commit()
    return card


def _commands() -> int:
    return db.session.scalar(select(func.count()).select_from(Command)) or 0


def _charging(card: Any, partner: Partner, kwh: float = 5) -> Any:
    start = utcnow() - dt.timedelta(minutes=30)
    periods = [period(start, kwh=kwh, hours=0.5, POWER=11, STATE_OF_CHARGE=58)]
    session = store_session(
        partner, session_object(card, "S-APP", start, kwh=kwh, last_updated=utcnow(), periods=periods)
    )
    db.session.commit()
    return session


def test_the_active_session_with_its_cost_so_far_is_cheap_to_poll(
    client: FlaskClient, driver: SignedIn, other_driver: SignedIn, charger: Any, partner: Partner
) -> None:
    assert call(client, "GET", "/api/v1/sessions/active", driver).get_json()["items"] == []
    session = _charging(charger, partner)
    answer = call(client, "GET", "/api/v1/sessions/active", driver)
    assert answer.status_code == 200 and answer.headers["ETag"] == f'"{answer.get_json()["version"]}"'
    [live] = answer.get_json()["items"]
    assert (live["id"], live["status"], live["card_id"]) == (session.id, "ACTIVE", charger.id)
    assert live["location"] == {
        "country_code": "NL",
        "party_id": "TCP",
        "id": "LOC-EST",
        "name": "Stationsplein P1",
        "city": "Utrecht",
    }
    assert (live["kwh"], live["duration_seconds"], live["average_power_kw"]) == ("5.0000", 1800, "10.00")
    assert (live["current_power_kw"], live["state_of_charge_percent"]) == ("11", "58")
    cost = live["cost_so_far"]
    # AC-STD: 5 × 0.39 + 0.25 = 2.20; payg 5 × 0.05 + 0.35 = 0.60; 2.80 excl. VAT, 0.588 VAT, 3.388 incl.
    assert (cost["source"], cost["basis"]) == ("frozen_tariff", "charging_periods")
    assert [
        cost[name]["amount_minor"] for name in ("operator_price", "our_fees", "total_excl_vat", "vat", "total")
    ] == [
        220,
        60,
        280,
        59,
        339,
    ]
    assert live["cost_missing"] is None and live["operator_total_cost"] is None and live["stop_request"] is None

    unchanged = call(
        client, "GET", "/api/v1/sessions/active", driver, headers={"If-None-Match": answer.headers["ETag"]}
    )
    assert unchanged.status_code == 304 and unchanged.get_data() == b""
    later = ocpi_timestamp(utcnow() + dt.timedelta(seconds=5))
    patch_session(partner, "NL", "TCP", "S-APP", {"kwh": 6, "last_updated": later, "total_cost": {"excl_vat": 2.6}})
    db.session.commit()
    changed = call(client, "GET", "/api/v1/sessions/active", driver, headers={"If-None-Match": answer.headers["ETag"]})
    assert changed.status_code == 200 and changed.get_json()["items"][0]["kwh"] == "6.0000"
    assert changed.get_json()["items"][0]["operator_total_cost"] == {
        "excl_vat": {"amount_minor": 260, "currency": "EUR"},
        "incl_vat": None,
    }
    assert call(client, "GET", "/api/v1/sessions/active", other_driver).get_json()["items"] == []


def test_start_then_follow_the_command_to_the_charge_points_answer(
    client: FlaskClient, driver: SignedIn, charger: Any, partner: Partner, fake_cpo: FakeCpo
) -> None:
    started = call(client, "POST", "/api/v1/sessions/start", driver, json={**AT_LOC_EST, "card_id": charger.id})
    assert started.status_code == 202, started.get_json()
    command = started.get_json()
    assert (command["type"], command["state"], command["result"], command["resend_is_safe"]) == (
        "START_SESSION",
        "pending",
        None,
        False,
    )
    assert command["evse_uid"] == "E1" and command["answer_due_at"]
    [sent] = fake_cpo.state["commands"]
    assert sent["body"]["token"]["uid"] == charger.uid and sent["body"]["location_id"] == "LOC-EST"

    again = call(client, "POST", "/api/v1/sessions/start", driver, json={**AT_LOC_EST, "card_id": charger.id})
    assert again.status_code == 202 and again.get_json()["id"] == command["id"]  # pending: not sent twice
    assert len(fake_cpo.state["commands"]) == 1

    stored = db.session.get(Command, command["id"])
    message = [{"language": "en", "text": "Charging started"}]
    record_result(partner, "START_SESSION", stored.uid, {"result": "ACCEPTED", "message": message})
    db.session.commit()
    done = call(client, "GET", f"/api/v1/commands/{command['id']}", driver).get_json()
    assert (done["state"], done["result"], done["message"]) == ("accepted", "ACCEPTED", "Charging started")


def test_start_with_the_phones_app_token(
    client: FlaskClient, driver: SignedIn, charger: Any, fake_cpo: FakeCpo
) -> None:
    without = call(client, "POST", "/api/v1/sessions/start", driver, json={**AT_LOC_EST, "app_token": True})
    assert problem(without, 422, "app_token_missing")["errors"] == {"app_token": [without.get_json()["message"]]}
    token = call(client, "POST", "/api/v1/cards/app-token", driver)
    assert token.status_code == 201
    started = call(client, "POST", "/api/v1/sessions/start", driver, json={**AT_LOC_EST, "app_token": True})
    assert started.status_code == 202
    [sent] = [c for c in fake_cpo.state["commands"] if c["command"] == "START_SESSION"]
    app_token = db.session.get(Card, token.get_json()["id"])
    assert (sent["body"]["token"]["uid"], sent["body"]["token"]["type"]) == (app_token.uid, "APP_USER")
    for both_or_neither in ({**AT_LOC_EST, "app_token": True, "card_id": charger.id}, AT_LOC_EST):
        problem(call(client, "POST", "/api/v1/sessions/start", driver, json=both_or_neither), 422, "validation_failed")


@pytest.mark.parametrize(
    ("situation", "status", "code", "field"),
    [
        ("card_blocked", 409, "card_blocked", None),
        ("no_payment_method", 409, "no_payment_method", None),
        ("overdue_balance", 409, "overdue_balance", None),
        ("evse_not_remote_capable", 409, "evse_not_remote_capable", None),
        ("evse_unavailable", 409, "evse_unavailable", None),
        ("location_not_found", 422, "location_not_found", "location"),
        ("evse_not_found", 422, "evse_not_found", "evse_uid"),
        ("connector_not_found", 422, "connector_not_found", "connector_id"),
        ("not_your_card", 422, "not_your_card", "card_id"),
    ],
)
def test_every_refusal_has_its_code_and_nothing_is_sent(
    client: FlaskClient,
    driver: SignedIn,
    other_driver: SignedIn,
    charger: Any,
    partner: Partner,
    fake_cpo: FakeCpo,
    situation: str,
    status: int,
    code: str,
    field: str | None,
) -> None:
    from app.audit.services import Actor
    from app.cards import services as card_services
    from app.payments.models import PaymentMethod

    body: dict[str, Any] = {**AT_LOC_EST, "card_id": charger.id}
    if situation == "card_blocked":
        card_services.block_card(charger, BlockReason.STOLEN, Actor.system("test"))
    elif situation == "no_payment_method":
        db.session.query(PaymentMethod).filter_by(account_id=driver.account.id).delete()
    elif situation == "overdue_balance":
        invoice = finalized_invoice(driver.account.id, 1000, issue_date=dt.date.today() - dt.timedelta(days=30))
        invoice.payment_state = PaymentState.FAILED
    elif situation in ("evse_not_remote_capable", "evse_unavailable"):
        evse = {"capabilities": ["RFID_READER"]} if situation == "evse_not_remote_capable" else {"status": "CHARGING"}
        remote_place(partner, fake_cpo, **evse)
    elif situation == "location_not_found":
        body["location"] = {**body["location"], "id": "LOC-NOWHERE"}
    elif situation == "evse_not_found":
        body["evse_uid"] = "E9"
    elif situation == "connector_not_found":
        body["connector_id"] = "9"
    elif situation == "not_your_card":
        body["card_id"] = card_in(CardStatus.ACTIVE, user=other_driver.user).id
    db.session.commit()
    refused = problem(call(client, "POST", "/api/v1/sessions/start", driver, json=body), status, code)
    assert refused["message"] and refused["type"].endswith(code)
    if field is not None:
        assert refused["errors"] == {field: [refused["message"]]}
    assert _commands() == 0 and "commands" not in fake_cpo.state


def test_stop_and_what_another_driver_can_reach(
    client: FlaskClient, driver: SignedIn, other_driver: SignedIn, charger: Any, partner: Partner, fake_cpo: FakeCpo
) -> None:
    session = _charging(charger, partner)
    problem(call(client, "POST", f"/api/v1/sessions/{session.id}/stop", other_driver), 404, "session_not_found")
    assert "commands" not in fake_cpo.state
    stopped = call(client, "POST", f"/api/v1/sessions/{session.id}/stop", driver)
    assert stopped.status_code == 202 and stopped.get_json()["type"] == "STOP_SESSION"
    command_id = stopped.get_json()["id"]
    [sent] = fake_cpo.state["commands"]
    assert sent["body"]["session_id"] == "S-APP"
    live = call(client, "GET", "/api/v1/sessions/active", driver).get_json()["items"][0]
    assert live["stop_request"] == {"command_id": command_id, "state": "pending"}

    problem(call(client, "GET", f"/api/v1/commands/{command_id}", other_driver), 404, "command_not_found")
    assert call(client, "GET", f"/api/v1/commands/{command_id}", driver).status_code == 200
    problem(call(client, "GET", "/api/v1/commands/2147483647", driver), 404, "command_not_found")

    session.status = "COMPLETED"
    db.session.commit()
    problem(call(client, "POST", f"/api/v1/sessions/{session.id}/stop", driver), 409, "session_not_active")


def test_a_command_without_answer_says_so(client: FlaskClient, driver: SignedIn, charger: Any) -> None:
    started = call(client, "POST", "/api/v1/sessions/start", driver, json={**AT_LOC_EST, "card_id": charger.id})
    command = db.session.get(Command, started.get_json()["id"])
    command.timeout_at = utcnow() - dt.timedelta(seconds=1)
    db.session.commit()
    shown = call(client, "GET", f"/api/v1/commands/{command.id}", driver).get_json()
    assert (shown["state"], shown["resend_is_safe"]) == ("timeout", False)
