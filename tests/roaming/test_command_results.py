"""A CommandResult is final once recorded (issue 12 item 6): every CommandResultType (mod_commands) is a final
state, so a repeated or stale result is answered with success (the CPO stops retrying) but changes nothing and is
logged; a result that arrives after we timed the command out is kept beside it (``late_result``)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from app.cards.models import CardStatus
from app.db import utcnow
from app.extensions import db
from app.roaming.models import Command
from app.roaming.send.commands import RESULT_TYPES, dispatch_command, expire_commands, prepare_command, send_command
from tests.roaming.test_commands import _path
from tests.roaming.test_token_push import connect
from tests.roaming.token_fixtures import card_in

FINAL_RESULTS = sorted(RESULT_TYPES)


def _post_result(ocpi, command: Command, result: str, text: str | None = None):  # type: ignore[no-untyped-def]
    body: dict = {"result": result}
    if text:
        body["message"] = [{"language": "en", "text": text}]
    response = ocpi.post(_path(command.request["response_url"]), json=body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status_code"] == 1000
    db.session.expire_all()
    return db.session.get(Command, command.id)


def _state(command: Command) -> tuple:
    return (
        command.result,
        command.result_message,
        command.result_at,
        command.late_result,
        command.late_result_message,
        command.late_result_at,
    )


def test_the_spec_lists_nine_final_results():
    assert FINAL_RESULTS == [
        "ACCEPTED",
        "CANCELED_RESERVATION",
        "EVSE_INOPERATIVE",
        "EVSE_OCCUPIED",
        "FAILED",
        "NOT_SUPPORTED",
        "REJECTED",
        "TIMEOUT",
        "UNKNOWN_RESERVATION",
    ]


@pytest.mark.parametrize("final", FINAL_RESULTS)
def test_a_final_result_is_never_overwritten(ocpi, partner, fake_cpo, caplog, final):
    connect(partner, fake_cpo)
    command = send_command(
        partner, "START_SESSION", {"location_id": "LOC1", "evse_uid": "3256"}, card=card_in(CardStatus.ACTIVE)
    )
    db.session.commit()
    recorded = _post_result(ocpi, command, final, "first word")
    before = _state(recorded)
    assert before[0] == final and before[2] is not None and before[3] is None

    stale = "FAILED" if final != "FAILED" else "ACCEPTED"
    with caplog.at_level(logging.INFO, logger="app.roaming.send.commands"):
        after_stale = _post_result(ocpi, command, stale, "second word")
        after_repeat = _post_result(ocpi, command, final, "again")
    assert _state(after_stale) == before and _state(after_repeat) == before
    assert f"stale result {stale} ignored" in caplog.text and f"repeated result {final} ignored" in caplog.text
    assert expire_commands(utcnow() + dt.timedelta(hours=1)) == 0


def test_a_result_after_our_timeout_is_kept_beside_it(ocpi, partner, fake_cpo, caplog):
    connect(partner, fake_cpo)
    fake_cpo.misbehave["command_timeout"] = 10
    command = send_command(partner, "STOP_SESSION", {"session_id": "101"})
    assert expire_commands(utcnow() + dt.timedelta(seconds=11)) == 1
    db.session.commit()
    timed_out = db.session.get(Command, command.id)
    assert timed_out.result == "TIMEOUT" and timed_out.timed_out_at is not None

    with caplog.at_level(logging.INFO, logger="app.roaming.send.commands"):
        late = _post_result(ocpi, command, "ACCEPTED", "stopped after all")
    assert (late.result, late.result_message, late.result_at) == (
        "TIMEOUT",
        timed_out.result_message,
        timed_out.result_at,
    )  # the final state stays
    assert late.late_result == "ACCEPTED" and "stopped after all" in late.late_result_message
    assert late.late_result_at is not None
    assert "kept as late_result" in caplog.text

    # A second late result (a retry or a contradiction) changes nothing either.
    again = _post_result(ocpi, command, "FAILED")
    assert _state(again) == _state(late)


def test_a_timeout_sent_by_the_cpo_is_final_not_ours(ocpi, partner, fake_cpo):
    """TIMEOUT from the charge point (through the CPO) is the command's final result like any other: what follows
    is stale, not late."""
    connect(partner, fake_cpo)
    command = send_command(partner, "UNLOCK_CONNECTOR", {"location_id": "L", "evse_uid": "E", "connector_id": "1"})
    db.session.commit()
    by_cpo = _post_result(ocpi, command, "TIMEOUT")
    assert by_cpo.timed_out_at is None
    after = _post_result(ocpi, command, "ACCEPTED")
    assert _state(after) == _state(by_cpo) and after.late_result is None


def test_a_rejected_response_is_final_for_the_result_too(ocpi, partner, fake_cpo):
    connect(partner, fake_cpo)
    fake_cpo.misbehave["command_response"] = "REJECTED"
    command = send_command(partner, "UNLOCK_CONNECTOR", {"location_id": "L", "evse_uid": "E", "connector_id": "1"})
    db.session.commit()
    before = _state(db.session.get(Command, command.id))
    assert _state(_post_result(ocpi, command, "ACCEPTED")) == before


def test_a_result_posted_before_the_response_is_stored_is_kept(ocpi, partner, fake_cpo):
    """We commit before sending because the CPO may post the result while we still wait for its response: the
    response, stored afterwards, must not overwrite that result."""
    connect(partner, fake_cpo)
    command = prepare_command(partner, "STOP_SESSION", {"session_id": "101"})
    db.session.commit()
    _post_result(ocpi, command, "EVSE_INOPERATIVE")
    fake_cpo.misbehave["command_response"] = "REJECTED"
    dispatched = dispatch_command(db.session.get(Command, command.id))
    db.session.commit()
    assert dispatched.response_result == "REJECTED"
    assert dispatched.result == "EVSE_INOPERATIVE"
