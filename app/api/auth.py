"""Who is calling: the bearer token of a signed-in device, checked before every non-public route.

Only the ``Authorization: Bearer`` header counts: a portal cookie never authenticates an API call (so no CSRF
there). The check is a SHA-256 digest and one indexed query of the columns it needs (device, user and account state, the
language); the objects are loaded only by the routes that use them. "Last used" moves at most every few minutes, and
off the request path: a per-process buffer writes it in batches (``app.accounts.api_tokens.note_use``).
"""

from __future__ import annotations

from typing import cast

from flask import g, request
from flask_babel import lazy_gettext as _l

from app.accounts import api_tokens
from app.accounts.api_tokens import ApiDevice
from app.accounts.models import Account, Role, User
from app.api.problems import ApiProblem
from app.api.reads import writes_allowed
from app.db import utcnow
from app.extensions import db

# RFC 6750: a 401 names the scheme, and why the token was refused.
_CHALLENGE = 'Bearer realm="api"'
# The longest token we issue is 66 characters; anything much longer is not worth hashing.
_MAX_TOKEN_LENGTH = 200


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    return token


def _refusal(*, driver: bool, closed: bool, active: bool, confirmed: bool) -> ApiProblem | None:
    if not driver:
        return ApiProblem(403, "staff_not_allowed", _l("Staff accounts cannot use the app. Use the back office."))
    if closed:
        return ApiProblem(
            403, "account_closed", _l("This account is closed. Contact support if you think this is a mistake.")
        )
    if not active:
        return ApiProblem(403, "account_blocked", _l("This account is blocked. Please contact support."))
    if not confirmed:
        return ApiProblem(
            403, "email_unconfirmed", _l("Please confirm your email address first. We can send you a new link.")
        )
    return None


def refuse_unusable(user: User) -> None:
    """The 403 of a user who may not use the app: staff, a closed, blocked or unconfirmed account."""
    account = user.account
    refusal = _refusal(
        driver=user.role == Role.DRIVER and account is not None,
        closed=account is not None and account.closed_at is not None,
        active=user.active,
        confirmed=user.is_confirmed,
    )
    if refusal is not None:
        raise refusal


def authenticate_driver() -> None:
    """``before_request`` of every non-public blueprint: who holds the token goes to ``g``, or the call is refused."""
    token = _bearer_token()
    if token is None:
        raise ApiProblem(
            401,
            "token_missing",
            _l("Please sign in."),
            detail="No bearer token.",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    holder = api_tokens.holder_of_access_token(token)
    if holder is None:
        raise ApiProblem(
            401,
            "invalid_token",
            _l("You are signed out. Please sign in again."),
            detail="Unknown or revoked access token.",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
    now = utcnow()
    if holder.access_expires_at <= now:
        raise ApiProblem(
            401,
            "token_expired",
            _l("Your session expired. Please sign in again."),
            detail="The access token expired: refresh it.",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token", error_description="expired"'},
        )
    g.api_holder = holder
    refusal = _refusal(
        driver=holder.role == Role.DRIVER and holder.account_id is not None,
        closed=holder.account_closed,
        active=holder.user_active,
        confirmed=holder.email_confirmed,
    )
    if refusal is not None:
        raise refusal
    with writes_allowed():  # a GET reads only, but the check may note the device's use (when not buffered)
        if api_tokens.note_use(holder, now):
            db.session.commit()


def _holder() -> api_tokens.AccessHolder:
    return cast(api_tokens.AccessHolder, g.api_holder)


def current_device() -> ApiDevice:
    return db.session.get_one(ApiDevice, _holder().device_id)


def current_driver() -> User:
    return db.session.get_one(User, _holder().user_id)


def current_account_id() -> int:
    account_id = _holder().account_id
    assert account_id is not None  # only drivers with an account get through authenticate_driver
    return account_id


def current_account() -> Account:
    return db.session.get_one(Account, current_account_id())
