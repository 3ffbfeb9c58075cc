"""The fake CPO's Receiver interfaces: Tokens (the e-MSP pushes tokens) and Commands (the e-MSP sends them).

- ``PUT/PATCH /ocpi/cpo/2.2.1/tokens/{cc}/{pid}/{uid}?type=`` records ``{method, country_code, party_id, uid,
  type, body}`` in ``cpo.state['tokens']``; ``cpo.misbehave['token_push_fail_times'] = N`` answers HTTP 500 to
  the first N pushes.
- ``POST /ocpi/cpo/2.2.1/commands/{command}`` records ``{command, body}`` in ``cpo.state['commands']`` (the
  commands it acts on) and answers a CommandResponse ``ACCEPTED`` with ``cpo.misbehave.get('command_timeout',
  30)`` seconds (any JSON value: ``"30"``, ``2**40``), or ``cpo.misbehave['command_response']`` as the result
  when set. Answers of real CPOs (issue 13), by switch:

  - ``command_answer_shape``: ``"list"`` the CommandResponse wrapped in a one-item list; ``"upper_keys"`` its
    field names upper-case (``RESULT``, ``TIMEOUT``); ``"no_result"`` an object without result; ``"garbage"``
    HTTP 200 with an HTML page instead of JSON. The command is acted on in every case;
  - ``command_refusal = (http_status, status_code)``: refuses the command with that OCPI status (e.g.
    ``(200, 2003)`` unknown location); recorded in ``cpo.state['refused_commands']``, not acted on;
  - ``command_server_error = http_status`` (e.g. 502): acts on the command, then answers that status with
    OCPI 3000, as a CPO whose backend starts the session and fails on the way back;
  - ``command_delay = seconds``: acts on the command, then waits that long before answering;
  - ``command_redirect_to = url``: answers ``307`` to that URL without acting.
"""

from __future__ import annotations

import time
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
    received = {"command": values["command"], "body": body}
    if cpo.misbehave.get("command_redirect_to"):
        return Response("", status=307, headers={"Location": cpo.misbehave["command_redirect_to"]})
    refusal = cpo.misbehave.get("command_refusal")
    if refusal:
        cpo.state.setdefault("refused_commands", []).append(received)
        http_status, status_code = refusal
        return envelope(status_code=status_code, status_message="refused", http_status=http_status)
    cpo.state.setdefault("commands", []).append(received)
    time.sleep(cpo.misbehave.get("command_delay", 0))
    if cpo.misbehave.get("command_server_error"):
        return envelope(
            status_code=3000, status_message="backend error", http_status=cpo.misbehave["command_server_error"]
        )
    answer: dict[str, Any] = {
        "result": cpo.misbehave.get("command_response", "ACCEPTED"),
        "timeout": cpo.misbehave.get("command_timeout", 30),
    }
    shape = cpo.misbehave.get("command_answer_shape")
    if shape == "garbage":
        return Response("<html><body>Command queued</body></html>", status=200, mimetype="text/html")
    if shape == "no_result":
        del answer["result"]
    if shape == "upper_keys":
        answer = {key.upper(): value for key, value in answer.items()}
    return envelope([answer] if shape == "list" else answer)


def install(cpo: FakeCpo) -> None:
    cpo.route(f"{TOKENS_PATH}/<cc>/<pid>/<uid>", ["PUT", "PATCH"], _token)
    cpo.route(f"{COMMANDS_PATH}/<command>", ["POST"], _command)
