"""Fake CPO: versions, version details and the credentials Receiver.

Versions live at ``/ocpi/cpo/versions`` and ``/ocpi/cpo/2.2.1``; every module at
``/ocpi/cpo/2.2.1/<module>``. The credentials endpoint behaves like a real Receiver: POST accepts the e-MSP's
credentials (405 when already registered), accepts its token B from then on and answers with a fresh token C;
PUT rotates both; DELETE forgets them.

Switches in ``cpo.misbehave``: ``versions`` (a list replacing the offered versions), ``no_credentials_endpoint``,
``lowercase_roles`` (a peer that does not write the spec's case: its credentials roles read ``"role": "cpo"``
with lower-case ``country_code``/``party_id``, its endpoints ``"role": "sender"`` and upper-case module
identifiers such as ``"CREDENTIALS"``), ``refuse_unregister`` (DELETE credentials answered HTTP 500, our
credentials kept).
"""

from __future__ import annotations

import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.roaming.fake_cpo.server import FakeCpo, envelope

VERSIONS_PATH = "/ocpi/cpo/versions"
DETAILS_PATH = "/ocpi/cpo/2.2.1"
# (module, role) this CPO implements.
CPO_ENDPOINTS = (
    ("credentials", "SENDER"),
    ("locations", "SENDER"),
    ("tariffs", "SENDER"),
    ("sessions", "SENDER"),
    ("cdrs", "SENDER"),
    ("tokens", "RECEIVER"),
    ("commands", "RECEIVER"),
)


def versions_url(cpo: FakeCpo) -> str:
    return cpo.url(VERSIONS_PATH)


def module_url(cpo: FakeCpo, module: str) -> str:
    return cpo.url(f"{DETAILS_PATH}/{module}")


def cpo_credentials(cpo: FakeCpo, token: str) -> dict[str, Any]:
    lower = bool(cpo.misbehave.get("lowercase_roles"))
    return {
        "token": token,
        "url": versions_url(cpo),
        "roles": [
            {
                "role": "cpo" if lower else "CPO",
                "party_id": cpo.party_id.lower() if lower else cpo.party_id,
                "country_code": cpo.country_code.lower() if lower else cpo.country_code,
                "business_details": {"name": cpo.name},
            }
        ],
    }


def _versions(cpo: FakeCpo, request: Request, values: dict[str, Any]) -> Response:
    offered = cpo.misbehave.get("versions")
    if offered is None:
        offered = [
            {"version": "2.1.1", "url": cpo.url("/ocpi/cpo/2.1.1")},
            {"version": "2.2.1", "url": cpo.url(DETAILS_PATH)},
        ]
    return envelope(offered)


def _details(cpo: FakeCpo, request: Request, values: dict[str, Any]) -> Response:
    lower = bool(cpo.misbehave.get("lowercase_roles"))
    endpoints = [
        {
            "identifier": module.upper() if lower else module,
            "role": role.lower() if lower else role,
            "url": module_url(cpo, module),
        }
        for module, role in CPO_ENDPOINTS
        if not (module == "credentials" and cpo.misbehave.get("no_credentials_endpoint"))
    ]
    return envelope({"version": "2.2.1", "endpoints": endpoints})


def _missing(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body"
    for name in ("token", "url", "roles"):
        if not body.get(name):
            return name
    return None


def _credentials(cpo: FakeCpo, request: Request, values: dict[str, Any]) -> Response:
    body = values["body"]
    registered = cpo.emsp_credentials is not None
    if request.method == "GET":
        return envelope(cpo_credentials(cpo, cpo.state.get("token_c", cpo.token_a_for_emsp)))
    if request.method == "DELETE":
        if not registered:
            return envelope(status_code=2000, status_message="not registered", http_status=405)
        if cpo.misbehave.get("refuse_unregister"):
            return envelope(status_code=3000, status_message="cannot unregister now", http_status=500)
        cpo.accepted_tokens.discard(cpo.emsp_credentials["token"])
        cpo.accepted_tokens.discard(cpo.state.pop("token_c", ""))
        cpo.emsp_credentials = None
        return envelope()
    if request.method == "POST" and registered:
        return envelope(status_code=2000, status_message="already registered", http_status=405)
    if request.method == "PUT" and not registered:
        return envelope(status_code=2000, status_message="not registered", http_status=405)
    missing = _missing(body)
    if missing:
        return envelope(status_code=2001, status_message=f"{missing}: required", http_status=400)
    if registered:  # PUT: the previous tokens die
        cpo.accepted_tokens.discard(cpo.emsp_credentials["token"])
        cpo.accepted_tokens.discard(cpo.state.get("token_c", ""))
    cpo.emsp_credentials = body
    cpo.accepted_tokens.add(body["token"])
    token_c = f"cpo-token-c-{secrets.token_hex(8)}"
    cpo.state["token_c"] = token_c
    cpo.accepted_tokens.add(token_c)
    return envelope(cpo_credentials(cpo, token_c))


def install(cpo: FakeCpo) -> None:
    cpo.route(VERSIONS_PATH, ["GET"], _versions)
    cpo.route(DETAILS_PATH, ["GET"], _details)
    cpo.route(f"{DETAILS_PATH}/credentials", ["GET", "POST", "PUT", "DELETE"], _credentials)
