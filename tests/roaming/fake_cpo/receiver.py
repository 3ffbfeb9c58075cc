"""The fake CPO's Receiver interfaces: Tokens (the e-MSP pushes tokens) and Commands (the e-MSP sends them).

- ``PUT/PATCH /ocpi/cpo/2.2.1/tokens/{cc}/{pid}/{uid}?type=`` records ``{method, country_code, party_id, uid,
  type, body}`` in ``cpo.state['tokens']``; ``cpo.misbehave['token_push_fail_times'] = N`` answers HTTP 500 to
  the first N pushes.
- ``POST /ocpi/cpo/2.2.1/commands/{command}`` records ``{command, body}`` in ``cpo.state['commands']`` and answers
  a CommandResponse ``ACCEPTED`` with ``cpo.misbehave.get('command_timeout', 30)`` seconds, or
  ``cpo.misbehave['command_response']`` as the result when set.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from tests.roaming.fake_cpo.server import FakeCpo, envelope

TOKENS_PATH = "/ocpi/cpo/2.2.1/tokens"
COMMANDS_PATH = "/ocpi/cpo/2.2.1/commands"


def _token(cpo: FakeCpo, request: Request, values: dict[str, Any]) -> Response:
    failures_left = cpo.misbehave.get("token_push_fail_times", 0)
    if failures_left:
        cpo.misbehave["token_push_fail_times"] = failures_left - 1
        return envelope(status_code=3000, status_message="temporarily broken", http_status=500)
    body = values["body"]
    if not isinstance(body, dict) or (request.method == "PUT" and not body.get("uid")):
        return envelope(status_code=2001, status_message="Token object expected", http_status=400)
    cpo.state.setdefault("tokens", []).append(
        {
            "method": request.method,
            "country_code": values["cc"],
            "party_id": values["pid"],
            "uid": values["uid"],
            "type": request.args.get("type", "RFID"),
            "body": body,
        }
    )
    return envelope()


def _command(cpo: FakeCpo, request: Request, values: dict[str, Any]) -> Response:
    body = values["body"]
    if not isinstance(body, dict) or not body.get("response_url"):
        return envelope(status_code=2001, status_message="response_url missing", http_status=400)
    cpo.state.setdefault("commands", []).append({"command": values["command"], "body": body})
    result = cpo.misbehave.get("command_response", "ACCEPTED")
    return envelope({"result": result, "timeout": cpo.misbehave.get("command_timeout", 30)})


def install(cpo: FakeCpo) -> None:
    cpo.route(f"{TOKENS_PATH}/<cc>/<pid>/<uid>", ["PUT", "PATCH"], _token)
    cpo.route(f"{COMMANDS_PATH}/<command>", ["POST"], _command)
