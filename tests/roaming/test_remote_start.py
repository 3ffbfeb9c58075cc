"""Remote start and stop (``roaming.send.remote``) against the fake CPO: what is sent and to whom, every refusal
before anything is sent, and a second request while one is pending."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from app.accounts.models import Account
from app.audit.services import Actor
from app.billing.models import PaymentState
from app.cards import services as card_services
from app.cards.models import BlockReason, CardStatus
from app.charging.models import ChargingSession
from app.db import utcnow
from app.extensions import db
from app.roaming.models import Command, CommandState, PartnerStatus
from app.roaming.receive.locations import upsert_location
from app.roaming.receive.sessions import store_session
from app.roaming.send import remote
from app.roaming.send.commands import record_result
from tests.billing.conftest import finalized_invoice
from tests.factories import make_user
from tests.rating.live_sessions import session_object
from tests.roaming.conftest import add_registered_hub
from tests.roaming.remote_fixtures import location_object, remote_place
from tests.roaming.token_fixtures import card_in


def _commands() -> int:
    return db.session.scalar(select(func.count()).select_from(Command)) or 0


def _account(card):  # type: ignore[no-untyped-def]
    return db.session.get(Account, card.account_id)


def _start(card, location, evse_uid="E1", **kwargs):  # type: ignore[no-untyped-def]
    return remote.start_session(_account(card), location, evse_uid, card, commit=db.session.commit, **kwargs)


def test_start_sends_start_session_with_the_card_to_the_cpo_of_the_location(partner, fake_cpo):
    location = remote_place(partner, fake_cpo)
    card = card_in(CardStatus.ACTIVE)
    command = _start(card, location, connector_id="1")
    db.session.commit()
    [sent] = fake_cpo.state["commands"]
    assert sent["command"] == "START_SESSION"
    body = sent["body"]
    assert body["token"]["uid"] == card.uid and body["token"]["contract_id"] == card.contract_id
    assert (body["location_id"], body["evse_uid"], body["connector_id"]) == ("LOC-EST", "E1", "1")
    assert len(body["authorization_reference"]) == 32
    assert body["response_url"].endswith(f"/ocpi/2.2.1/commands/START_SESSION/{command.uid}")
    assert (command.state, command.account_id, command.card_id) == (CommandState.PENDING, card.account_id, card.id)
    assert remote.command_status(_account(card), command.id) is command
    assert remote.command_status(make_user().account, command.id) is None  # another driver's: as if none


def test_an_app_token_starts_like_a_card(partner, fake_cpo, db_session):
    location = remote_place(partner, fake_cpo)
    user = make_user()
    card_in(CardStatus.ACTIVE, user=user)  # gives the account its payment method
    app_token = card_services.issue_app_token(user.account, Actor.of(user))
    _start(app_token, location)
    [sent] = fake_cpo.state["commands"]
    assert (sent["body"]["token"]["uid"], sent["body"]["token"]["type"]) == (app_token.uid, "APP_USER")
    assert app_token in remote.startable_cards(user.account.id)


def test_a_second_start_while_the_first_is_pending_is_not_sent_again(partner, fake_cpo, db_session):
    location = remote_place(partner, fake_cpo)
    card = card_in(CardStatus.ACTIVE)
    first = _start(card, location)
    again = _start(card, location, evse_uid="e1")  # the uid is a CiString: the same EVSE
    assert again.id == first.id and len(fake_cpo.state["commands"]) == 1 and _commands() == 1

    # Once the charge point answered, a new start is a new command.
    record_result(partner, "START_SESSION", first.uid, {"result": "EVSE_OCCUPIED"})
    retry = _start(card, location)
    assert retry.id != first.id and len(fake_cpo.state["commands"]) == 2

    # A command the CPO took and whose timeout passed is not pending any more, even before the job records it.
    retry.timeout_at = utcnow() - dt.timedelta(seconds=1)
    assert remote.shown_state(retry) == CommandState.TIMEOUT
    assert _start(card, location).id != retry.id


def test_a_pending_start_at_another_evse_does_not_count(partner, fake_cpo, db_session):
    data = location_object()
    data["evses"].append({**data["evses"][0], "uid": "E2", "evse_id": "NL*TCP*E2"})
    remote_place(partner, fake_cpo)
    location = upsert_location(
        {**data, "last_updated": "2026-01-02T00:00:00Z"}, partner=partner, country_code="NL", party_id="TCP"
    )
    card = card_in(CardStatus.ACTIVE)
    assert _start(card, location, "E1").id != _start(card, location, "E2").id
    assert len(fake_cpo.state["commands"]) == 2


@pytest.mark.parametrize(
    ("card_status", "block_reason", "code"),
    [
        (CardStatus.BLOCKED, BlockReason.LOST, remote.CARD_BLOCKED),
        (CardStatus.BLOCKED, BlockReason.PAYMENT, remote.OVERDUE_BALANCE),  # blocked by dunning
        (CardStatus.EXPIRED, BlockReason.LOST, remote.CARD_EXPIRED),
        (CardStatus.REPLACED, BlockReason.LOST, remote.CARD_EXPIRED),
        (CardStatus.SHIPPED, BlockReason.LOST, remote.CARD_NOT_ACTIVE),
    ],
)
def test_a_card_that_may_not_charge_is_refused(app, partner, fake_cpo, card_status, block_reason, code):
    location = remote_place(partner, fake_cpo)
    card = card_in(card_status, block_reason=block_reason)
    with pytest.raises(remote.RefusedError) as refused:
        _start(card, location)
    assert refused.value.code == code
    with app.test_request_context():
        assert str(refused.value.message) == str(remote.REFUSAL_MESSAGES[code])
    assert _commands() == 0 and "commands" not in fake_cpo.state


def _refused(code: str, card, location, evse_uid="E1", **kwargs):  # type: ignore[no-untyped-def]
    with pytest.raises(remote.RefusedError) as refused:
        _start(card, location, evse_uid, **kwargs)
    assert refused.value.code == code, refused.value.detail
    assert _commands() == 0  # nothing recorded (each test checks that the fake CPO received nothing)
    return refused.value


def test_the_account_must_be_able_to_pay(partner, fake_cpo, db_session):
    location = remote_place(partner, fake_cpo)
    user = make_user()  # no payment method
    app_token = card_services.issue_app_token(user.account, Actor.of(user))
    _refused(remote.NO_PAYMENT_METHOD, app_token, location)

    card = card_in(CardStatus.ACTIVE)  # with a payment method
    invoice = finalized_invoice(card.account_id, 1000, issue_date=dt.date.today() - dt.timedelta(days=20))
    invoice.payment_state = PaymentState.FAILED  # unpaid and overdue: authorization's standing check says no
    db.session.flush()
    _refused(remote.OVERDUE_BALANCE, card, location)
    assert "commands" not in fake_cpo.state


def test_the_card_must_be_the_accounts(partner, fake_cpo, db_session):
    location = remote_place(partner, fake_cpo)
    mine, theirs = card_in(CardStatus.ACTIVE), card_in(CardStatus.ACTIVE)
    with pytest.raises(remote.RefusedError) as refused:
        remote.start_session(_account(mine), location, "E1", theirs, commit=db.session.commit)
    assert refused.value.code == remote.NOT_YOUR_CARD and _commands() == 0


@pytest.mark.parametrize(
    ("evse", "code"),
    [
        ({"capabilities": ["RFID_READER"]}, remote.EVSE_NOT_REMOTE_CAPABLE),
        ({"capabilities": []}, remote.EVSE_NOT_REMOTE_CAPABLE),
        ({"status": "CHARGING"}, remote.EVSE_UNAVAILABLE),
        ({"status": "OUTOFORDER"}, remote.EVSE_UNAVAILABLE),
        ({"status": "UNKNOWN"}, remote.EVSE_UNAVAILABLE),
        ({"status": "REMOVED"}, remote.EVSE_NOT_FOUND),
    ],
)
def test_the_evse_must_be_startable_remotely_and_available(partner, fake_cpo, evse, code):
    location = remote_place(partner, fake_cpo, **evse)
    _refused(code, card_in(CardStatus.ACTIVE), location)
    assert "commands" not in fake_cpo.state


def test_the_location_must_be_known_published_and_reachable(app, partner, fake_cpo, db_session):
    location = remote_place(partner, fake_cpo)
    card = card_in(CardStatus.ACTIVE)
    _refused(remote.LOCATION_NOT_FOUND, card, None)
    _refused(remote.EVSE_NOT_FOUND, card, location, "E9")
    _refused(remote.CONNECTOR_NOT_FOUND, card, location, connector_id="9")

    app.config["ROAMING_LOCATION_RULES"] = {"NL/TCP": {"allowed_location_ids": ["LOC-OTHER"]}}
    try:
        _refused(remote.LOCATION_NOT_ALLOWED, card, location)  # the partner rules of authorization apply
    finally:
        app.config.pop("ROAMING_LOCATION_RULES")

    location.publish = False
    _refused(remote.LOCATION_UNAVAILABLE, card, location)
    location.publish = True
    for status in (PartnerStatus.SUSPENDED, PartnerStatus.UNREGISTERED):
        partner.status = status
        _refused(remote.LOCATION_UNAVAILABLE, card, location)
    partner.status = PartnerStatus.REGISTERED
    partner.endpoints = [endpoint for endpoint in partner.endpoints if endpoint["identifier"] != "commands"]
    _refused(remote.REMOTE_CONTROL_UNAVAILABLE, card, location)
    assert "commands" not in fake_cpo.state


def test_no_public_url_for_the_result_refuses_before_sending(app, partner, fake_cpo, db_session):
    location = remote_place(partner, fake_cpo)
    card = card_in(CardStatus.ACTIVE)
    saved = {key: app.config.get(key) for key in ("OCPI_BASE_URL", "PUBLIC_BASE_URL")}
    app.config.update(OCPI_BASE_URL=None, PUBLIC_BASE_URL=None)
    try:
        refused = _refused(remote.REMOTE_CONTROL_UNAVAILABLE, card, location)
    finally:
        app.config.update(saved)
    assert "could not post the result back" in refused.detail and "commands" not in fake_cpo.state


def test_through_a_hub_the_command_is_addressed_to_the_cpo_of_the_location(partner, fake_cpo, db_session):
    remote_place(partner, fake_cpo)  # the direct CPO's connection (for the fake CPO's receivers)
    hub = add_registered_hub("hub-token")
    hub.outgoing_token = partner.outgoing_token
    hub.endpoints = partner.endpoints
    data = {**location_object(), "party_id": "ALF", "id": "LOC-ALF"}
    location = upsert_location(data, partner=hub, country_code="NL", party_id="ALF")
    card = card_in(CardStatus.ACTIVE)
    command = _start(card, location)
    assert command.partner_id == hub.id
    [request] = [r for r in fake_cpo.requests_to("/ocpi/cpo/2.2.1/commands/START_SESSION", "POST")]
    headers = {key.lower(): value for key, value in request.headers.items()}
    assert (headers["ocpi-to-country-code"], headers["ocpi-to-party-id"]) == ("NL", "ALF")


def _live_session(card, partner, status="ACTIVE"):  # type: ignore[no-untyped-def]
    start = utcnow() - dt.timedelta(minutes=20)
    data = session_object(card, "S-LIVE", start, kwh=3, last_updated=utcnow(), status=status)
    if status == "COMPLETED":
        data["end_date_time"] = data["last_updated"]
    return store_session(partner, data)


def test_stop_sends_stop_session_once_while_pending(partner, fake_cpo, db_session):
    remote_place(partner, fake_cpo)
    card = card_in(CardStatus.ACTIVE)
    session = _live_session(card, partner)
    found = remote.session_of(card.account_id, session.id)
    command = remote.stop_session(_account(card), found, commit=db.session.commit)
    again = remote.stop_session(_account(card), found, commit=db.session.commit)
    assert again.id == command.id and command.command == "STOP_SESSION" and command.state == CommandState.PENDING
    [sent] = fake_cpo.state["commands"]
    assert (sent["command"], sent["body"]["session_id"]) == ("STOP_SESSION", "S-LIVE")
    # A blocked card still stops its session: stopping is always allowed.
    card_services.block_card(card, BlockReason.STOLEN, Actor.system("test"))
    record_result(partner, "STOP_SESSION", command.uid, {"result": "ACCEPTED"})
    assert remote.stop_session(_account(card), found, commit=db.session.commit).id != command.id


def test_stop_refusals(partner, fake_cpo, db_session):
    remote_place(partner, fake_cpo)
    card, other = card_in(CardStatus.ACTIVE), card_in(CardStatus.ACTIVE)
    session = _live_session(card, partner)
    assert remote.session_of(other.account_id, session.id) is None
    for who, which, code in (
        (_account(other), session, remote.SESSION_NOT_FOUND),  # another driver's session
        (_account(card), None, remote.SESSION_NOT_FOUND),
    ):
        with pytest.raises(remote.RefusedError) as refused:
            remote.stop_session(who, which, commit=db.session.commit)
        assert refused.value.code == code
    session.status = "COMPLETED"
    with pytest.raises(remote.RefusedError) as refused:
        remote.stop_session(_account(card), session, commit=db.session.commit)
    assert refused.value.code == remote.SESSION_NOT_ACTIVE
    session.status = "ACTIVE"
    partner.status = PartnerStatus.SUSPENDED
    with pytest.raises(remote.RefusedError) as refused:
        remote.stop_session(_account(card), session, commit=db.session.commit)
    assert refused.value.code == remote.REMOTE_CONTROL_UNAVAILABLE
    assert _commands() == 0 and "commands" not in fake_cpo.state
    assert db.session.get(ChargingSession, session.id).status == "ACTIVE"


def test_the_cpos_words_with_the_result_in_the_drivers_language(partner, fake_cpo, db_session):
    location = remote_place(partner, fake_cpo)
    card = card_in(CardStatus.ACTIVE)
    command = _start(card, location)
    message = [{"language": "en", "text": "Plug in first"}, {"language": "nl", "text": "Steek eerst de stekker in"}]
    record_result(partner, "START_SESSION", command.uid, {"result": "FAILED", "message": message})
    assert remote.result_text(command, "nl") == "Steek eerst de stekker in"
    assert remote.result_text(command, "fr") == "Plug in first"
    command.result_message = json.dumps("busy")
    assert remote.result_text(command, "en") == "busy"
    command.result_message = None
    assert remote.result_text(command, "en") is None
