"""Migration 13e5d0a7e007 gives the commands recorded before it their state, and moves out of ``result`` what was
never the CPO's word: our failure to deliver (SEND_FAILED, recorded as FAILED) and a success answer we could not
read (also recorded as FAILED). Run on a scratch SQLite database, from the revision before it."""

from __future__ import annotations

import datetime as dt
import json

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from app import create_app
from app.extensions import db

BEFORE = "13d4d0a6e006"
THIS = "13e5d0a7e007"
AT = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC).isoformat()

# (uid, command, response_result, result, result_message, timeout_at, timed_out_at) as the old code wrote them.
OLD_ROWS = [
    (
        "send-failed",
        "START_SESSION",
        "SEND_FAILED",
        "FAILED",
        "POST https://cpo.example/commands/START: timed out",
        None,
        None,
    ),
    ("unreadable", "START_SESSION", None, "FAILED", None, None, None),
    ("pending", "STOP_SESSION", "ACCEPTED", None, None, AT, None),
    ("timed-out", "STOP_SESSION", "ACCEPTED", "TIMEOUT", "no CommandResult from the CPO within its timeout", AT, AT),
    ("rejected", "UNLOCK_CONNECTOR", "REJECTED", "REJECTED", None, None, None),
    ("accepted", "START_SESSION", "ACCEPTED", "ACCEPTED", None, AT, None),
    ("cancelled", "CANCEL_RESERVATION", "ACCEPTED", "CANCELED_RESERVATION", None, AT, None),
    ("occupied", "START_SESSION", "ACCEPTED", "EVSE_OCCUPIED", '[{"text": "occupied"}]', AT, None),
    ("never-answered", "STOP_SESSION", None, None, None, None, None),
]
EXPECTED = {
    "send-failed": ("unknown", None, None, "POST https://cpo.example/commands/START: timed out"),
    "unreadable": (
        "unknown",
        None,
        None,
        "CommandResponse unreadable (recorded as FAILED before revision 13e5d0a7e007)",
    ),
    "pending": ("pending", "ACCEPTED", None, None),
    "timed-out": ("timeout", "ACCEPTED", "TIMEOUT", None),
    "rejected": ("rejected", "REJECTED", "REJECTED", None),
    "accepted": ("accepted", "ACCEPTED", "ACCEPTED", None),
    "cancelled": ("accepted", "ACCEPTED", "CANCELED_RESERVATION", None),
    "occupied": ("failed", "ACCEPTED", "EVSE_OCCUPIED", None),
    "never-answered": ("unknown", None, None, "no answer recorded (before revision 13e5d0a7e007)"),
}


def _insert_old_rows() -> None:
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO roaming_partners (id, name, is_hub, country_code, party_id, status, send_base64_tokens, "
                "endpoints, created_at) VALUES (1, 'Old CPO', false, 'NL', 'OLD', 'registered', true, '[]', :at)"
            ),
            {"at": AT},
        )
        for uid, command, response_result, result, message, timeout_at, timed_out_at in OLD_ROWS:
            connection.execute(
                text(
                    "INSERT INTO roaming_commands (uid, partner_id, command, request, response_result, result, "
                    "result_message, result_at, created_at, timeout_at, timed_out_at) VALUES (:uid, 1, :command, "
                    ":request, :response_result, :result, :message, :result_at, :at, :timeout_at, :timed_out_at)"
                ),
                {
                    "uid": uid,
                    "command": command,
                    "request": json.dumps({"response_url": f"https://emsp.example/{uid}"}),
                    "response_result": response_result,
                    "result": result,
                    "message": message,
                    "result_at": AT if result else None,
                    "at": AT,
                    "timeout_at": timeout_at,
                    "timed_out_at": timed_out_at,
                },
            )


def _rows() -> dict[str, tuple]:
    with db.engine.connect() as connection:
        found = connection.execute(
            text("SELECT uid, state, response_result, result, response_problem FROM roaming_commands")
        ).all()
    return {uid: tuple(rest) for uid, *rest in found}


def test_old_commands_get_their_true_state_and_back(tmp_path):
    scratch = create_app("test", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'migration.sqlite3'}")
    with scratch.app_context():
        upgrade(revision=BEFORE)
        _insert_old_rows()
        upgrade(revision=THIS)
        assert _rows() == EXPECTED

        downgrade(revision=BEFORE)
        with db.engine.connect() as connection:
            undone = dict(
                connection.execute(text("SELECT uid, response_result || '/' || result FROM roaming_commands")).all()
            )
        # What the old code would have shown for a command it could not deliver; the CPO's words untouched.
        assert undone["send-failed"] == undone["never-answered"] == "SEND_FAILED/FAILED"
        assert undone["occupied"] == "ACCEPTED/EVSE_OCCUPIED" and undone["rejected"] == "REJECTED/REJECTED"
        db.engine.dispose()
