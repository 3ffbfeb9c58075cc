"""How the finder's API resources (``/api/v1/locations``, ``/api/v1/geocode``) are reached: by anyone, signed in or not.

- **Who**: the blueprints are public (``security: []`` in the document), but a call that carries a bearer token is
  authenticated as every other API call is (:func:`app.api.auth.authenticate_driver`): a signed-in app gets its
  driver's plan prices, and an expired token is a 401 the app refreshes on, not a silent fall back to visitor
  prices. :func:`caller_account` is the driver's account, or None for a visitor.
- **How much**: one budget for every finder call (``FINDER_API_RATE_LIMIT``), per signed-in account, else per
  address (visitors behind one address share it; a driver does not share a café's budget).
- **Bad input**: a 400 problem ``invalid_parameter`` naming each parameter in ``errors``, whether the schema or the
  finder (:class:`app.finder.queries.FinderInputError`) found it; the API's other resources answer 422 for a body,
  but the finder's parameters are a query string, and the issue (14) asks for 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from flask import Request, current_app, g, request
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from marshmallow import Schema, ValidationError

from app.accounts.models import Account
from app.api.auth import authenticate_driver
from app.api.blueprints import ApiBlueprint, ApiParser
from app.api.problems import ApiProblem, Message
from app.extensions import db, limiter

INVALID_PARAMETER = "invalid_parameter"
DEFAULT_RATE_LIMIT = "120 per minute;2000 per hour"


def invalid_parameters(errors: Mapping[str, list[Message]], detail: str) -> ApiProblem:
    """The 400 of bad query parameters, each named in ``errors``."""
    return ApiProblem(400, INVALID_PARAMETER, _l("Some parameters are not valid."), detail=detail, errors=dict(errors))


def _by_parameter(messages: Any, name: str, into: dict[str, list[Message]]) -> None:
    """webargs' ``{location: {parameter: [...]}}`` (a list parameter's items nested by index) as
    ``{parameter: [...]}``; marshmallow's English messages translated lazily, in the caller's language."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            nested = name or ("" if key == "_schema" else str(key))
            _by_parameter(value, nested, into)
    elif isinstance(messages, list | tuple):
        for message in messages:
            _by_parameter(message, name, into)
    else:
        # A plain string is one of marshmallow's own messages (a msgid); a lazy one renders itself.
        into.setdefault(name or "query", []).append(_l(messages) if isinstance(messages, str) else messages)


class FinderParser(ApiParser):
    """The API's parser, answering bad query parameters with a 400 :data:`INVALID_PARAMETER` problem."""

    DEFAULT_VALIDATION_STATUS = 400

    def handle_error(
        self,
        error: ValidationError,
        req: Request,
        schema: Schema,
        *,
        error_status_code: int | None,
        error_headers: Mapping[str, str] | None,
    ) -> NoReturn:
        errors: dict[str, list[Message]] = {}
        for messages in (error.messages if isinstance(error.messages, Mapping) else {"query": error.messages}).values():
            _by_parameter(messages, "", errors)
        raise invalid_parameters(
            errors, "; ".join(f"{name}: {', '.join(map(str, texts))}" for name, texts in errors.items())
        )


def _authenticate_if_signed_in() -> None:
    # Only the header counts (never a portal cookie), as on every API route.
    if request.headers.get("Authorization"):
        authenticate_driver()


class FinderBlueprint(ApiBlueprint):
    """A public API blueprint whose callers may be signed in (see the module)."""

    ARGUMENTS_PARSER = FinderParser()

    def __init__(self, name: str, import_name: str, *, tag: str, **kwargs: Any) -> None:
        super().__init__(name, import_name, tag=tag, public=True, **kwargs)
        self.before_request(_authenticate_if_signed_in)


def caller_account() -> Account | None:
    """The signed-in driver's account (their plan prices the results); None for a visitor."""
    holder = g.get("api_holder")
    if holder is None or holder.account_id is None:
        return None
    return db.session.get_one(Account, holder.account_id)


def _rate_limit() -> str:
    return str(current_app.config.get("FINDER_API_RATE_LIMIT") or DEFAULT_RATE_LIMIT)


def _caller_key() -> str:
    # Checked inside the view's wrapper, after the blueprint authenticated the token.
    holder = g.get("api_holder")
    if holder is not None and holder.account_id is not None:
        return f"account:{holder.account_id}"
    return f"address:{get_remote_address()}"


# One budget for every finder call: an app shows a map, a list and a place search at once.
finder_limit = limiter.shared_limit(_rate_limit, scope="finder-api", key_func=_caller_key)
