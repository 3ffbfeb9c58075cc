"""Signed one-time links for email confirmation and password reset.

A reset link carries the user's ``session_version``; resetting the password bumps it, so a used link (or one
issued before a later reset) no longer verifies. A confirmation link carries the email it confirms (a sign-in
address, or an account's notification address).
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM_SALT = "accounts.confirm-email"
RESET_SALT = "accounts.reset-password"
NOTIFY_SALT = "accounts.confirm-notification-email"


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def make_confirm_token(user_id: int, email: str) -> str:
    return _serializer(CONFIRM_SALT).dumps({"uid": user_id, "email": email})


def make_notify_token(account_id: int, email: str) -> str:
    """The link confirming ``email`` as the account's notification address (a salt of its own: a sign-up
    confirmation link can never confirm a notification address, nor the other way round)."""
    return _serializer(NOTIFY_SALT).dumps({"account": account_id, "email": email})


def read_notify_token(token: str) -> dict[str, Any] | None:
    return _load(NOTIFY_SALT, token, current_app.config["CONFIRM_TOKEN_MAX_AGE"])


def make_reset_token(user_id: int, session_version: int) -> str:
    return _serializer(RESET_SALT).dumps({"uid": user_id, "v": session_version})


def read_confirm_token_or_why(token: str) -> tuple[dict[str, Any] | None, str]:
    """The confirmation link's payload and "ok", or None and why not: "expired" (a genuine link, too old: the
    driver asks for a new one) or "invalid" (not ours, or damaged in the mail)."""
    try:
        payload = _serializer(CONFIRM_SALT).loads(token, max_age=current_app.config["CONFIRM_TOKEN_MAX_AGE"])
    except SignatureExpired:
        return None, "expired"
    except BadSignature:
        return None, "invalid"
    return (payload, "ok") if isinstance(payload, dict) else (None, "invalid")


def read_reset_token(token: str) -> dict[str, Any] | None:
    return _load(RESET_SALT, token, current_app.config["RESET_TOKEN_MAX_AGE"])


def _load(salt: str, token: str, max_age: int) -> dict[str, Any] | None:
    try:
        payload = _serializer(salt).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    return payload if isinstance(payload, dict) else None
