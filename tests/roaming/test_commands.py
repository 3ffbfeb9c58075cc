"""Commands round trip with the fake CPO: POST to its receiver, CommandResponse stored, the asynchronous
CommandResult POSTed to our response_url, and timeouts."""

from __future__ import annotations

import datetime as dt

import pytest

from app.cards.models import CardStatus
from app.db import utcnow
from app.extensions import db
from app.roaming.models import Command, CommandState
from app.roaming.send.commands import CommandError, expire_commands, resend_is_safe, send_command
from tests.roaming.fake_cpo.receiver import COMMANDS_PATH
from tests.roaming.test_token_push import connect
from tests.roaming.token_fixtures import card_in


def _path(url: str) -> str:
    return url[url.index("/ocpi/") :]


def test_start_session_round_trip(ocpi, partner, fake_cpo):
    connect(partner, fake_cpo)
    card = card_in(CardStatus.ACTIVE)
    command = send_command(partner, "START_SESSION", {"location_id": "LOC1", "evse_uid": "3256"}, card=card)
    db.session.commit()
    [sent] = fake_cpo.state["commands"]
    assert sent["command"] == "START_SESSION"
    assert sent["body"]["token"]["uid"] == card.uid and sent["body"]["location_id"] == "LOC1"
    assert sent["body"]["response_url"].endswith(f"/ocpi/2.2.1/commands/START_SESSION/{command.uid}")
    assert command.response_result == "ACCEPTED" and command.response_timeout == 30
    assert command.timeout_at is not None and command.result is None and command.state == CommandState.PENDING
    assert command.account_id == card.account_id

    # The CPO posts the charge point's answer to our response_url.
    response = ocpi.post(_path(sent["body"]["response_url"]), json={"result": "ACCEPTED"})
    assert response.status_code == 200 and response.get_json()["status_code"] == 1000
    db.session.expire_all()
    stored = db.session.get(Command, command.id)
    assert stored.result == "ACCEPTED" and stored.result_at is not None and stored.state == CommandState.ACCEPTED
    assert expire_commands(utcnow() + dt.timedelta(hours=1)) == 0  # answered: never times out


def test_timeout_is_recorded(ocpi, partner, fake_cpo):
    connect(partner, fake_cpo)
    fake_cpo.misbehave["command_timeout"] = 10
    command = send_command(partner, "STOP_SESSION", {"session_id": "101"})
    assert expire_commands(utcnow()) == 0
    assert expire_commands(utcnow() + dt.timedelta(seconds=11)) == 1
    assert command.result == "TIMEOUT" and command.result_message and command.state == CommandState.TIMEOUT
    db.session.commit()
    # A result arriving late is still recorded, beside the TIMEOUT that stays final (test_command_results).
    url = fake_cpo.state["commands"][0]["body"]["response_url"]
    assert ocpi.post(_path(url), json={"result": "FAILED"}).status_code == 200
    db.session.expire_all()
    late = db.session.get(Command, command.id)
    assert (late.result, late.late_result) == ("TIMEOUT", "FAILED")


def test_rejected_command_is_final(partner, fake_cpo, db_session):
    connect(partner, fake_cpo)
    fake_cpo.misbehave["command_response"] = "REJECTED"
    command = send_command(partner, "UNLOCK_CONNECTOR", {"location_id": "L", "evse_uid": "E", "connector_id": "1"})
    assert command.response_result == "REJECTED" and command.result == "REJECTED" and command.timeout_at is None
    assert command.state == CommandState.REJECTED and command.response_status_code == 1000


def test_bad_requests(ocpi, partner, fake_cpo):
    connect(partner, fake_cpo)
    with pytest.raises(CommandError):
        send_command(partner, "SELF_DESTRUCT", {})
    with pytest.raises(CommandError):
        send_command(partner, "RESERVE_NOW", {"location_id": "L"})
    command = send_command(partner, "CANCEL_RESERVATION", {"reservation_id": "R1"})
    db.session.commit()
    url = _path(fake_cpo.state["commands"][0]["body"]["response_url"])
    assert ocpi.post(url, json={"result": "MAYBE"}).get_json()["status_code"] == 2001
    assert ocpi.post(url, json={}).get_json()["status_code"] == 2001
    assert ocpi.post(url.replace(command.uid, "unknown"), json={"result": "ACCEPTED"}).status_code == 404
    assert ocpi.post(url.replace("CANCEL_RESERVATION", "STOP_SESSION"), json={"result": "ACCEPTED"}).status_code == 404
    assert fake_cpo.requests_to(COMMANDS_PATH, "POST")


def test_a_cpo_refusing_our_token_rejects_the_command(partner, fake_cpo, db_session):
    """HTTP 401: the CPO received the request and did nothing with it. That is a refusal (a resend cannot stop
    the session twice), not "unreachable" and not a result of the charge point."""
    connect(partner, fake_cpo)
    fake_cpo.accepted_tokens.clear()  # the CPO answers 401
    command = send_command(partner, "STOP_SESSION", {"session_id": "101"})
    assert command.state == CommandState.REJECTED and command.result == "REJECTED"
    assert command.response_http_status == 401 and command.response_result is None
    assert command.result_message == "OCPI 2000 (client error), HTTP 401"
    assert command.response_problem == "HTTP 401 from partner"
    assert resend_is_safe(command) and "commands" not in fake_cpo.state


def test_commands_are_addressed_to_the_cpo_that_owns_the_location(partner, fake_cpo, db_session):
    """Through a hub or a platform, ``OCPI-to-*`` names the CPO behind the location, session or reservation
    (transport_and_format, routing headers), not the hub itself, which would broadcast it."""
    from app.roaming.receive.locations import upsert_location
    from tests.factories import one_connector_location

    connect(partner, fake_cpo)
    location = {**one_connector_location("T1"), "country_code": "NL", "party_id": "ALF", "id": "LOC-ALF"}
    upsert_location(location, partner=partner, country_code="NL", party_id="ALF")
    card = card_in(CardStatus.ACTIVE)

    send_command(partner, "START_SESSION", {"location_id": "LOC-ALF", "evse_uid": "E1"}, card=card)
    send_command(
        partner,
        "RESERVE_NOW",
        {"location_id": "LOC-ALF", "reservation_id": "R-7", "expiry_date": "2026-12-01T10:00:00Z"},
        card=card,
    )
    send_command(partner, "CANCEL_RESERVATION", {"reservation_id": "R-7"})
    send_command(partner, "UNLOCK_CONNECTOR", {"location_id": "LOC-UNKNOWN", "evse_uid": "E1", "connector_id": "1"})

    addressed = [
        (r.headers.get("Ocpi-To-Country-Code"), r.headers.get("Ocpi-To-Party-Id"))
        for r in fake_cpo.requests_to(COMMANDS_PATH, "POST")
    ]
    assert addressed == [("NL", "ALF"), ("NL", "ALF"), ("NL", "ALF"), ("NL", "TCP")]  # unknown: the partner


def test_support_sends_commands_from_the_command_line(app, partner, fake_cpo, db_session):
    connect(partner, fake_cpo)
    card = card_in(CardStatus.ACTIVE)
    cli = app.test_cli_runner()

    unlock = cli.invoke(
        args=[
            "roaming",
            "send-command",
            "NL/TCP",
            "UNLOCK_CONNECTOR",
            "--location",
            "LOC1",
            "--evse",
            "3256",
            "--connector",
            "1",
        ]
    )
    start = cli.invoke(
        args=[
            "roaming",
            "send-command",
            "NL/TCP",
            "START_SESSION",
            "--card",
            card.uid,
            "--location",
            "LOC1",
            "--evse",
            "3256",
        ]
    )
    incomplete = cli.invoke(args=["roaming", "send-command", "NL/TCP", "STOP_SESSION"])
    unknown_card = cli.invoke(
        args=["roaming", "send-command", "NL/TCP", "START_SESSION", "--card", "NOPE", "--location", "LOC1"]
    )

    assert unlock.exit_code == 0 and "UNLOCK_CONNECTOR" in unlock.output and "ACCEPTED" in unlock.output
    assert start.exit_code == 0, start.output
    sent = fake_cpo.state["commands"]
    assert [entry["command"] for entry in sent] == ["UNLOCK_CONNECTOR", "START_SESSION"]
    assert sent[0]["body"]["connector_id"] == "1" and sent[1]["body"]["token"]["uid"] == card.uid
    assert incomplete.exit_code != 0 and "STOP_SESSION needs session_id" in incomplete.output
    assert unknown_card.exit_code != 0 and "no card with uid NOPE" in unknown_card.output
    assert db.session.query(Command).count() == 2  # refused commands are not recorded


def test_no_command_goes_to_a_partner_we_do_not_talk_to(partner, fake_cpo, db_session):
    from app.roaming.models import PartnerStatus

    connect(partner, fake_cpo)
    partner.status = PartnerStatus.SUSPENDED
    db.session.flush()
    with pytest.raises(CommandError, match="Test CPO is suspended: no commands"):
        send_command(partner, "STOP_SESSION", {"session_id": "101"})
    assert db.session.query(Command).count() == 0 and not fake_cpo.received
