"""The JSON API door for the driver's app (``/api/v1``, OpenAPI at ``/api/v1/openapi.json``, browsable at
``/api/v1/docs``).

:func:`register_api` is the one place it is wired into an app (called by ``create_app``): the resource blueprints,
its error answers (RFC 9457 problem documents for everything under ``/api``), the bearer scheme and the problem
responses in the OpenAPI document. A new resource is one more module with an :class:`~app.api.blueprints.ApiBlueprint`
named ``blp``, added to :data:`RESOURCE_MODULES`.
"""

from __future__ import annotations

import http
from types import ModuleType
from typing import Any

from flask import Flask

RESOURCE_MODULES = (
    "status",
    "tokens",
    "devices",
    "me",
    "cards",
    "plans",
    "payment_method",
    "sessions",
    "live",
    "commands",
    "invoices",
    "balance",
    "estimate",
    "locations",
    "geocode",
)

API_DESCRIPTION = """The driver's app API.

**Sign in** with `POST /api/v1/auth/token` (email, password, a name for this device): you get an access token (send it
as `Authorization: Bearer <token>`, valid 15 minutes) and a refresh token (60 days, single use:
`POST /api/v1/auth/refresh` gives a new pair). Using an old refresh token again signs the device out (theft
detection). `DELETE /api/v1/auth/token` signs this device out.

**Errors** are RFC 9457 problem documents (`application/problem+json`) with a stable `code` to branch on, a `message`
in the account's language (or `Accept-Language` before sign-in) to show, and for invalid input `errors`:
`{field: [messages]}`.

**Lists** take `?cursor=&limit=` and answer `{"items": [...], "next": cursor or null}`; pass `next` back unchanged.

**Money** paid is integer minor units with its currency (`{"amount_minor": 1234, "currency": "EUR"}`); unit prices
and quantities are exact decimal strings. **Times** are ISO 8601 with their offset.
"""


def _modules() -> list[ModuleType]:
    import importlib

    return [importlib.import_module(f"app.api.{name}") for name in RESOURCE_MODULES]


def _document(spec: Any) -> None:
    """The bearer scheme for every operation (public ones say ``security: []``), and every error response of the
    document as a problem document instead of flask-smorest's default error shape."""
    from flask_smorest.utils import prepare_response

    from app.api.problems import PROBLEM_MEDIA_TYPE
    from app.api.schemas import ProblemOut

    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "The access token of a signed-in device."}
    )
    spec.options["security"] = [{"bearerAuth": []}]
    spec.options.setdefault("info", {})["description"] = API_DESCRIPTION
    names = [status.name for status in http.HTTPStatus if status >= 400] + ["DEFAULT_ERROR"]
    for name in names:
        # Registered lazily by flask-smorest, or already in use (a blueprint registered before this one).
        in_use = spec.components.responses.pop(name, None) is not None
        spec.components.responses_lazy.pop(name, None)
        description = "Problem document" if name == "DEFAULT_ERROR" else http.HTTPStatus[name].phrase
        response: dict[str, Any] = {"description": description, "schema": ProblemOut}
        prepare_response(response, spec, PROBLEM_MEDIA_TYPE)
        spec.components.response(name, response, lazy=not in_use)


def register_api(app: Flask) -> None:
    """Wire the API into ``app`` (once, from ``create_app``, after the extensions)."""
    from app.api import reads
    from app.api.docs import bp as docs_bp
    from app.api.problems import render_problem
    from app.errors import register_door_errors
    from app.extensions import api, csrf

    register_door_errors(app, "/api", render_problem)
    reads.init_app()
    _document(api.spec)
    for module in _modules():
        if app.blueprints.get(module.blp.name) is module.blp:
            continue  # registered already (a second call, or create_app registering status on its own)
        api.register_blueprint(module.blp)
        # Bearer tokens, not cookies: no CSRF (a browser never sends the Authorization header by itself).
        csrf.exempt(module.blp)
    app.register_blueprint(docs_bp)
