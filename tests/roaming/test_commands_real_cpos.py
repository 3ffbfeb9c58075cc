"""Commands against CPOs that answer like real ones did (issue 13, item 2): every answer the fake CPO gives here
is one a real CPO gave us. What matters each time is the command's state and whether a resend could start a
second session: an accepted command is never recorded as failed, a refusal is not "unreachable", and an answer
we could not read or never got is never "failed, retry"."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from app.cards.models import CardStatus
from app.db import utcnow
from app.extensions import db
from app.roaming.models import Command, CommandState
from app.roaming.send.commands import (
    DEFAULT_TIMEOUT_SECONDS,
    dispatch_command,
    expire_overdue_commands,
    prepare_command,
    read_command_response,
    resend_is_safe,
    send_command,
)
from tests.roaming.fake_cpo.receiver import COMMANDS_PATH
from tests.roaming.test_commands import _path
from tests.roaming.test_token_push import connect
from tests.roaming.token_fixtures import card_in

START = {"location_id": "LOC1", "evse_uid": "3256"}


def _start(partner, fake_cpo) -> Command:  # type: ignore[no-untyped-def]
    connect(partner, fake_cpo)
    return send_command(partner, "START_SESSION", dict(START), card=card_in(CardStatus.ACTIVE))


def _cli_start(app, partner, fake_cpo):  # type: ignore[no-untyped-def]
    """``flask roaming send-command NL/TCP START_SESSION ...`` as support types it."""
    connect(partner, fake_cpo)
    card = card_in(CardStatus.ACTIVE)
    args = ["roaming", "send-command", "NL/TCP", "START_SESSION", "--card", card.uid, "--location", "LOC1"]
    return app.test_cli_runner().invoke(args=[*args, "--evse", "3256"])


def _reloaded(command: Command) -> Command:
    db.session.expire_all()
    return db.session.get_one(Command, command.id)


# --- an accepted command is accepted, however the CPO wraps it ------------------------------------------------------


def test_an_accepted_answer_wrapped_in_a_one_item_list_is_accepted(partner, fake_cpo, db_session):
    fake_cpo.misbehave["command_answer_shape"] = "list"  # "data": [{"result": "ACCEPTED", "timeout": 30}]
    command = _start(partner, fake_cpo)
    assert command.state == CommandState.PENDING and command.result is None
    assert command.response_result == "ACCEPTED" and command.response_timeout == 30
    assert command.timeout_at is not None and command.response_problem is None
    assert not resend_is_safe(command)


def test_the_cli_reports_a_list_wrapped_acceptance_as_pending_and_exits_0(app, partner, fake_cpo, db_session):
    """The bug: "not sent", exit 1, while the CPO started the session; the operator retried and started a second."""
    fake_cpo.misbehave["command_answer_shape"] = "list"
    result = _cli_start(app, partner, fake_cpo)
    assert result.exit_code == 0, result.output
    assert "PENDING" in result.output and "ACCEPTED" in result.output and "Do not send it again" in result.output
    assert "not sent" not in result.output and len(fake_cpo.state["commands"]) == 1


def test_field_names_and_values_in_another_case_are_read(partner, fake_cpo, db_session):
    fake_cpo.misbehave.update(command_answer_shape="upper_keys", command_response="accepted", command_timeout=45)
    command = _start(partner, fake_cpo)
    assert (command.state, command.response_result, command.response_timeout) == (CommandState.PENDING, "ACCEPTED", 45)


@pytest.mark.parametrize(
    ("sent_timeout", "kept"),
    [("30", 30), (30.0, 30), (2**40, None), (0, None), (-5, None), (True, None), ("soon", None), (None, None)],
)
def test_only_a_usable_timeout_is_kept(partner, fake_cpo, db_session, sent_timeout, kept):
    """2**40 seconds overflowed the datetime and the INTEGER column; the default applies to anything unusable."""
    fake_cpo.misbehave["command_timeout"] = sent_timeout
    before = utcnow()
    command = _start(partner, fake_cpo)
    assert command.state == CommandState.PENDING and command.response_timeout == kept
    waited = (command.timeout_at - before).total_seconds()
    assert (kept or DEFAULT_TIMEOUT_SECONDS) <= waited < (kept or DEFAULT_TIMEOUT_SECONDS) + 5


# --- a success we cannot read: the CPO has the command; wait for its result ---------------------------------------


@pytest.mark.parametrize("shape", ["no_result", "garbage"])
def test_a_success_answer_we_cannot_read_leaves_the_command_pending(ocpi, partner, fake_cpo, shape):
    fake_cpo.misbehave["command_answer_shape"] = shape
    command = _start(partner, fake_cpo)
    db.session.commit()
    assert command.state == CommandState.PENDING and command.result is None and command.response_result is None
    assert command.response_problem and command.response_http_status == 200
    assert command.timeout_at is not None and not resend_is_safe(command)

    # The CPO's CommandResult, when it comes, is the command's result.
    answer = ocpi.post(_path(command.request["response_url"]), json={"result": "ACCEPTED"})
    assert answer.get_json()["status_code"] == 1000
    stored = _reloaded(command)
    assert (stored.state, stored.result) == (CommandState.ACCEPTED, "ACCEPTED")


def test_an_unreadable_answer_without_result_ends_in_timeout_not_failed(partner, fake_cpo, db_session):
    fake_cpo.misbehave["command_answer_shape"] = "no_result"
    command = _start(partner, fake_cpo)
    later = utcnow() + dt.timedelta(seconds=DEFAULT_TIMEOUT_SECONDS + 1)
    assert expire_overdue_commands(later).timed_out == 1
    assert command.state == CommandState.TIMEOUT and command.result == "TIMEOUT"


def test_reading_a_command_response_never_raises():
    for data in (None, [], [{}, {}], "ACCEPTED", 42, {"result": {"x": 1}}, {"result": "MAYBE"}, [[{"result": 1}]]):
        answer = read_command_response(data)
        assert answer.result is None and answer.problem
    both = read_command_response({"result": "ACCEPTED", "Result": "REJECTED"})  # the exact name wins
    assert both.result == "ACCEPTED"


# --- the CPO said no: REJECTED, nothing was done ------------------------------------------------------------------


@pytest.mark.parametrize("refusal", ["REJECTED", "NOT_SUPPORTED", "UNKNOWN_SESSION", "not_supported"])
def test_a_refusing_command_response_is_rejected(partner, fake_cpo, db_session, refusal):
    fake_cpo.misbehave["command_response"] = refusal
    command = _start(partner, fake_cpo)
    assert command.state == CommandState.REJECTED and command.result == refusal.upper()
    assert command.timeout_at is None and resend_is_safe(command)


@pytest.mark.parametrize("http_status", [200, 404])
def test_ocpi_2003_unknown_location_is_rejected_by_the_cpo_not_unreachable(partner, fake_cpo, db_session, http_status):
    fake_cpo.misbehave["command_refusal"] = (http_status, 2003)
    command = _start(partner, fake_cpo)
    assert command.state == CommandState.REJECTED and command.result == "REJECTED"
    assert command.response_status_code == 2003 and command.response_http_status == http_status
    assert command.result_message == f"OCPI 2003 (unknown location), HTTP {http_status}"
    assert resend_is_safe(command) and len(fake_cpo.state["refused_commands"]) == 1


def test_the_cli_says_a_refused_command_was_not_done_and_exits_1(app, partner, fake_cpo, db_session):
    fake_cpo.misbehave["command_refusal"] = (200, 2003)
    result = _cli_start(app, partner, fake_cpo)
    assert result.exit_code == 1, result.output
    assert "REJECTED" in result.output and "refused by the CPO" in result.output and "2003" in result.output
    assert "cannot do it twice" in result.output


# --- no usable answer: it may have arrived; never "failed, retry" -------------------------------------------------


def test_a_5xx_after_the_cpo_acted_is_unknown_and_its_result_still_lands(ocpi, partner, fake_cpo):
    fake_cpo.misbehave["command_server_error"] = 502  # its backend started the session, then failed to answer
    command = _start(partner, fake_cpo)
    db.session.commit()
    assert command.state == CommandState.UNKNOWN and command.result is None and not resend_is_safe(command)
    assert command.response_http_status == 502 and command.response_problem == "HTTP 502 from partner"
    assert len(fake_cpo.state["commands"]) == 1  # the CPO did receive it

    ocpi.post(_path(command.request["response_url"]), json={"result": "ACCEPTED"})
    stored = _reloaded(command)
    assert (stored.state, stored.result) == (CommandState.ACCEPTED, "ACCEPTED")


def test_the_cli_warns_that_a_resend_could_start_a_second_session_and_exits_3(app, partner, fake_cpo, db_session):
    fake_cpo.misbehave["command_server_error"] = 500
    result = _cli_start(app, partner, fake_cpo)
    assert result.exit_code == 3, result.output
    assert "UNKNOWN" in result.output and "do NOT send it again" in result.output
    assert "second session" in result.output and "FAILED" not in result.output


def test_ocpi_3000_with_http_200_is_unknown(partner, fake_cpo, db_session):
    fake_cpo.misbehave["command_refusal"] = (200, 3000)
    command = _start(partner, fake_cpo)
    assert command.state == CommandState.UNKNOWN and command.response_status_code == 3000


def test_an_answer_that_times_out_is_unknown(app, partner, fake_cpo, db_session, monkeypatch):
    monkeypatch.setitem(app.config, "OCPI_READ_TIMEOUT", 0.3)
    fake_cpo.misbehave["command_delay"] = 1.5  # received and acted on, answered too late
    command = _start(partner, fake_cpo)
    assert command.state == CommandState.UNKNOWN and command.response_problem == "timed out"
    assert command.result is None and not resend_is_safe(command) and len(fake_cpo.state["commands"]) == 1


def test_a_cpo_redirecting_every_call_gets_the_command(partner, fake_cpo, db_session):
    """A CPO answering 307 to every call is real (issue 13): the command follows it at the CPO's own origin (a 307
    means "not processed here, send it there"), and the CPO's answer is read as usual."""
    fake_cpo.misbehave["redirect_every_call"] = True
    command = _start(partner, fake_cpo)
    assert command.state == CommandState.PENDING and command.response_result == "ACCEPTED"
    assert len(fake_cpo.state["commands"]) == 1  # acted on once, behind the redirect


def test_a_redirect_to_another_origin_is_not_followed_with_our_token(partner, fake_cpo, db_session):
    fake_cpo.misbehave["redirect_every_call"] = "http://localhost:9"  # another origin (nobody listens there)
    command = _start(partner, fake_cpo)
    # A 307 is "not processed here": refused before any other host got it, the command was never done anywhere.
    assert command.state == CommandState.NOT_SENT and resend_is_safe(command)
    assert command.response_problem == "redirect to another origin refused"
    assert not fake_cpo.state.get("commands")  # never acted on


def test_a_redirect_to_nowhere_is_refused_and_safe_to_resend(partner, fake_cpo, db_session):
    fake_cpo.misbehave["command_redirect_to"] = fake_cpo.url("/ocpi/cpo/2.2.1/elsewhere")
    command = _start(partner, fake_cpo)
    assert fake_cpo.requests_to("/ocpi/cpo/2.2.1/elsewhere")  # followed, and answered 404 there
    assert command.state == CommandState.REJECTED and resend_is_safe(command)
    assert not fake_cpo.state.get("commands")


def test_no_connection_is_not_sent_and_safe_to_resend(app, partner, fake_cpo, db_session):
    with socket.socket() as probe:  # a port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    connect(partner, fake_cpo)
    partner.endpoints = [{"identifier": "commands", "role": "RECEIVER", "url": f"http://127.0.0.1:{closed}/commands"}]
    db.session.flush()
    command = send_command(partner, "STOP_SESSION", {"session_id": "101"})
    assert command.state == CommandState.NOT_SENT and command.response_problem == "could not connect"
    assert command.result is None and resend_is_safe(command)

    result = app.test_cli_runner().invoke(args=["roaming", "send-command", "NL/TCP", "STOP_SESSION", "--session", "1"])
    assert result.exit_code == 1 and "NOT_SENT" in result.output and "never reached the CPO" in result.output


def test_an_interrupted_send_becomes_unknown(partner, fake_cpo, db_session):
    """Committed before sending, then the process died: the CPO may have it. Never left SENDING forever."""
    connect(partner, fake_cpo)
    command = prepare_command(partner, "STOP_SESSION", {"session_id": "101"})
    db.session.commit()
    assert command.state == CommandState.SENDING
    assert expire_overdue_commands(utcnow() + dt.timedelta(minutes=1)).interrupted == 0  # maybe still sending
    expired = expire_overdue_commands(utcnow() + dt.timedelta(minutes=30))
    assert expired.interrupted == 1 and expired.timed_out == 0
    assert command.state == CommandState.UNKNOWN and not resend_is_safe(command)


def test_a_late_answer_after_an_interrupted_send_is_still_recorded(partner, fake_cpo, db_session):
    connect(partner, fake_cpo)
    command = prepare_command(partner, "STOP_SESSION", {"session_id": "101"})
    db.session.commit()
    expire_overdue_commands(utcnow() + dt.timedelta(minutes=30))
    dispatched = dispatch_command(command)
    assert dispatched.state == CommandState.PENDING and dispatched.response_result == "ACCEPTED"


# --- CiStrings: the CPO's spelling of our ids ---------------------------------------------------------------------


def test_a_command_result_with_our_uid_in_another_case_is_recorded(ocpi, partner, fake_cpo):
    command = _start(partner, fake_cpo)
    db.session.commit()
    url = _path(command.request["response_url"])
    shouted = url.replace(command.uid, command.uid.upper()).replace("START_SESSION", "start_session")
    answer = ocpi.post(shouted, json=[{"Result": "accepted"}])
    assert answer.status_code == 200 and answer.get_json()["status_code"] == 1000, answer.get_json()
    stored = _reloaded(command)
    assert (stored.state, stored.result) == (CommandState.ACCEPTED, "ACCEPTED")


def test_a_cancel_reservation_in_another_case_goes_to_the_cpo_of_the_reservation(partner, fake_cpo, db_session):
    from app.roaming.receive.locations import upsert_location
    from tests.factories import one_connector_location

    connect(partner, fake_cpo)
    location = {**one_connector_location("T1"), "country_code": "NL", "party_id": "ALF", "id": "LOC-ALF"}
    upsert_location(location, partner=partner, country_code="NL", party_id="ALF")
    reservation = {"location_id": "LOC-ALF", "reservation_id": "Res-7", "expiry_date": "2026-12-01T10:00:00Z"}
    send_command(partner, "RESERVE_NOW", reservation, card=card_in(CardStatus.ACTIVE))
    send_command(partner, "CANCEL_RESERVATION", {"reservation_id": "RES-7"})
    cancel = fake_cpo.requests_to(f"{COMMANDS_PATH}/CANCEL_RESERVATION", "POST")[0]
    assert (cancel.headers.get("Ocpi-To-Country-Code"), cancel.headers.get("Ocpi-To-Party-Id")) == ("NL", "ALF")
