"""What the fuzzer found, pinned as plain tests (the fuzzer may not draw these cases again on every run)."""

from __future__ import annotations

import json

import pytest

from app.extensions import db
from app.roaming.models import Command
from tests.fuzz.receivers import FuzzEnv, V, example, ours


def _send(env: FuzzEnv, method: str, url: str, text: str):  # type: ignore[no-untyped-def]
    return env.callers["partner"].call(method, url, data=text, content_type="application/json")


@pytest.mark.parametrize("number", ["1E+999999999", "-1E+999999999"])
def test_a_number_beyond_any_decimal_context_is_2001_naming_the_field(fuzz_env: FuzzEnv, number: str) -> None:
    """``abs(Decimal("1E+999999999"))`` overflows the default decimal context: it was a 500 anywhere in a body,
    and in a GeoLocation (numbers as strings)."""
    tariff = json.dumps({**ours(example("tariff_1_simple_2hour.json")), "extension": "@"}).replace('"@"', number)
    response = _send(fuzz_env, "PUT", V + "/tariffs/NL/TCP/12", tariff)
    body = response.get_json()
    assert response.status_code == 400 and body["status_code"] == 2001, body
    assert "extension" in body["status_message"]
    location = ours(example("location_example.json"))
    location["coordinates"]["latitude"] = number
    response = _send(fuzz_env, "PUT", V + "/locations/NL/TCP/LOC1", json.dumps(location))
    body = response.get_json()
    assert response.status_code == 400 and "coordinates.latitude" in body["status_message"], body


@pytest.mark.parametrize("periods", ["true", "5", '"x"', "{}"])
def test_a_session_patch_whose_charging_periods_is_no_list_is_2001(fuzz_env: FuzzEnv, periods: str) -> None:
    fuzz_env.store_session()
    text = f'{{"charging_periods": {periods}, "last_updated": "2022-02-02T10:00:00Z"}}'
    response = _send(fuzz_env, "PATCH", V + "/sessions/NL/TCP/101", text)
    body = response.get_json()
    assert response.status_code == 400 and body["status_code"] == 2001, body
    assert "charging_periods" in body["status_message"]


def test_a_command_result_message_with_decimal_numbers_is_stored(fuzz_env: FuzzEnv) -> None:
    """The reader gives non-integer numbers as Decimal; the free-form message was a 500 (not JSON serializable)."""
    uid = fuzz_env.command_uid()
    response = _send(
        fuzz_env,
        "POST",
        f"{V}/commands/START_SESSION/{uid}",
        '{"result": "ACCEPTED", "message": {"language": "en", "text": "ok", "score": 1.5}}',
    )
    assert response.status_code == 200, response.get_json()
    db.session.expire_all()
    command = db.session.query(Command).filter_by(uid=uid).one()
    assert command.result == "ACCEPTED" and command.result_message is not None and "1.5" in command.result_message
