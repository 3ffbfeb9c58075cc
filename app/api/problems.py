"""Every refusal of the API as an RFC 9457 problem document (``application/problem+json``).

The document carries the RFC's ``type``, ``title``, ``status`` and ``detail``, plus what the app needs: a stable
``code`` to branch on and a ``message`` in the caller's language to show (the account's language once signed in,
else ``Accept-Language``), and for invalid input ``errors``: ``{field: [messages]}``.

Views raise :class:`ApiProblem`; anything else (404 of an unknown URL, 405, 413, 429 of the rate limiter, the
422 of schema validation, a crash) reaches :func:`render_problem` through the app's one error dispatcher
(``app.errors.register_door_errors`` for ``/api``), so the API never answers HTML.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeAlias

from flask import Response as FlaskResponse
from flask import current_app, g, request
from flask_babel import LazyString, force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from app.accounts.models import LANGUAGES

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:emsp:api:problem:"

Message: TypeAlias = str | LazyString

# The codes of answers any operation may give, with what the app may show. Resources add their own codes.
GENERIC: dict[int, tuple[str, LazyString]] = {
    400: ("bad_request", _l("The request could not be understood.")),
    401: ("unauthorized", _l("Please sign in.")),
    403: ("forbidden", _l("You are not allowed to do this.")),
    404: ("not_found", _l("This does not exist or is not yours.")),
    405: ("method_not_allowed", _l("This action is not available here.")),
    409: ("conflict", _l("This conflicts with the current state. Reload and try again.")),
    413: ("payload_too_large", _l("The request is too large.")),
    415: ("unsupported_media_type", _l("Send JSON (Content-Type: application/json).")),
    422: ("validation_failed", _l("Some fields are not valid.")),
    429: ("too_many_requests", _l("You tried this too often. Please wait a minute and try again.")),
    500: ("internal_error", _l("An unexpected error happened on our side. We have been notified.")),
    502: ("upstream_unavailable", _l("A service we depend on cannot be reached. Please try again later.")),
}

# marshmallow's and webargs' own messages, marked so that the catalogues translate them in ``errors``.
VALIDATION_MESSAGES = (
    _l("Missing data for required field."),
    _l("Unknown field."),
    _l("Field may not be null."),
    _l("Not a valid string."),
    _l("Not a valid integer."),
    _l("Not a valid boolean."),
    _l("Not a valid date."),
    _l("Invalid value."),
    _l("Invalid input type."),
    _l("Invalid JSON body."),
    _l("Control characters are not allowed."),
)


class ApiProblem(HTTPException):
    """A refusal with its stable ``code`` and a translatable ``message``; rendered by :func:`render_problem`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: Message,
        *,
        detail: str | None = None,
        errors: Mapping[str, list[Message]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.problem_code = code
        self.message = message
        self.field_errors = dict(errors or {})
        self.extra_headers = dict(headers or {})


def field_problem(field: str, message: Message, *, code: str = "validation_failed", status: int = 422) -> ApiProblem:
    """Invalid input in one field, named as the app sent it."""
    return ApiProblem(status, code, message, detail=f"{field}: {message}", errors={field: [message]})


def caller_language() -> str:
    """The signed-in driver's account language, else the best of ``Accept-Language``, else the default."""
    holder = g.get("api_holder")  # set by app.api.auth once the bearer token was checked
    language = getattr(holder, "language", None)
    if language in LANGUAGES:
        return str(language)
    return request.accept_languages.best_match(LANGUAGES) or current_app.config["BABEL_DEFAULT_LOCALE"]


@contextmanager
def in_caller_language() -> Iterator[None]:
    """Translate what is built inside in :func:`caller_language` (not the portal's choice of a cookie)."""
    with force_locale(caller_language()):
        yield


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs' nested ``{location: {field: [...]}}`` as ``{"field": [...]}``, nested fields joined by dots and
    errors of the body as a whole under ``body``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = str(key)
            if name == "_schema":
                name = ""
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name))
    elif isinstance(messages, list | tuple) and all(isinstance(item, str) for item in messages):
        flat.setdefault(prefix or "body", []).extend(_(item) for item in messages)
    elif isinstance(messages, list | tuple):
        for index, value in enumerate(messages):
            flat.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        # A plain string is one of marshmallow's own messages (a msgid); our schemas' lazy messages render
        # themselves in the caller's language.
        flat.setdefault(prefix or "body", []).append(_(messages) if isinstance(messages, str) else str(messages))
    return flat


def _validation_errors(http: HTTPException) -> dict[str, list[str]]:
    data = getattr(http, "data", None)
    if not isinstance(data, Mapping) or "messages" not in data:
        return {}
    by_location = data["messages"]
    if not isinstance(by_location, Mapping):
        return _flatten(by_location)
    flat: dict[str, list[str]] = {}
    for messages in by_location.values():  # json, query, path: the app knows where it put each field
        for field, texts in _flatten(messages).items():
            flat.setdefault(field, []).extend(texts)
    return flat


def problem_document(http: HTTPException) -> dict[str, Any]:
    status = http.code or 500
    generic_code, generic_message = GENERIC.get(status, (f"http_{status}", _l("The request could not be handled.")))
    if isinstance(http, ApiProblem):
        code, message = http.problem_code, http.message
        errors = {field: [str(text) for text in texts] for field, texts in http.field_errors.items()}
    else:
        code, message, errors = generic_code, generic_message, _validation_errors(http)
    document: dict[str, Any] = {
        "type": "about:blank" if code == generic_code else PROBLEM_TYPE_PREFIX + code,
        "title": http.name,
        "status": status,
        "detail": str(http.description or http.name) if status < 500 else http.name,
        "code": code,
        "message": str(message),
    }
    if errors:
        document["errors"] = errors
    return document


def render_problem(http: HTTPException) -> FlaskResponse:
    """The problem document of ``http`` (the door renderer registered for ``/api``)."""
    with in_caller_language():
        document = problem_document(http)
    response = current_app.response_class(
        json.dumps(document, ensure_ascii=False), status=document["status"], mimetype=PROBLEM_MEDIA_TYPE
    )
    response.headers["Content-Language"] = caller_language()
    if isinstance(http, ApiProblem):
        response.headers.update(http.extra_headers)
    valid_methods = getattr(http, "valid_methods", None)
    if document["status"] == 405 and isinstance(valid_methods, list | tuple):
        response.headers["Allow"] = ", ".join(valid_methods)
    retry_after = getattr(http, "retry_after", None)
    if document["status"] == 429 and retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response
