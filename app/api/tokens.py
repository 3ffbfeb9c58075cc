"""Signing the app in: ``POST /api/v1/auth/token`` (email, password, device name) and ``POST /api/v1/auth/refresh``.

Sign-in answers exactly like the portal's login form, through the same service (``accounts.services.authenticate``):
an unknown email and a wrong password get the same 401 after the same argon2 time, and only somebody who knows the
password learns that the account is closed, blocked or unconfirmed. The attempts count against the login form's
limits, per address and per account (one counter for both doors). Staff accounts are refused: the app is for
drivers. Signing out and the device list are in :mod:`app.api.devices`.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate
from werkzeug.exceptions import RequestEntityTooLarge

from app.accounts import api_tokens, services
from app.accounts.api_tokens import IssuedTokens, RefreshTokenReusedError
from app.accounts.login_limits import LOGIN_ACCOUNT_SCOPE, account_key_for
from app.api.auth import refuse_unusable
from app.api.blueprints import MAX_BODY_BYTES, ApiBlueprint
from app.api.problems import ApiProblem
from app.api.schemas import text
from app.extensions import db, limiter
from app.ocpi_values import load_json

blp = ApiBlueprint(
    "api_auth",
    __name__,
    tag="Sign-in",
    url_prefix="/api/v1/auth",
    public=True,
    description="Sign the app in and keep it signed in",
)


class TokenIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)
    device_name = text(100, required=True, min_length=1, metadata={"example": "Sam's phone"})


class RefreshIn(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class DeviceOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True)
    current = fields.Boolean(required=True, metadata={"description": "The device making this call."})


class TokensOut(Schema):
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    access_token = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds the access token lives."})
    access_expires_at = fields.DateTime(required=True)
    refresh_token = fields.String(required=True, metadata={"description": "Single use: refreshing replaces it."})
    refresh_expires_at = fields.DateTime(required=True)
    device = fields.Nested(DeviceOut, required=True)


def present_device(device: api_tokens.ApiDevice, current_id: int | None) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "created_at": device.created_at,
        "last_used_at": device.last_used_at,
        "current": device.id == current_id,
    }


def _tokens(issued: IssuedTokens) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "access_token": issued.access_token,
        "expires_in": int(api_tokens.access_lifetime().total_seconds()),
        "access_expires_at": issued.access_expires_at,
        "refresh_token": issued.refresh_token,
        "refresh_expires_at": issued.refresh_expires_at,
        "device": present_device(issued.device, issued.device.id),
    }


def _limit(key: str, default: str) -> str:
    return str(current_app.config.get(key, default))


def _typed_email_key() -> str:
    """The per-account limit's key: the email in the JSON body (read here, before the view, capped in size)."""
    request.max_content_length = MAX_BODY_BYTES
    try:
        payload = load_json(request.get_data(cache=True)) if request.is_json else None
    except (ValueError, RecursionError, RequestEntityTooLarge):
        payload = None
    email = payload.get("email") if isinstance(payload, dict) else None
    return account_key_for(email if isinstance(email, str) else "")


_WRONG_CREDENTIALS = _l("Email or password is not correct.")


@blp.route("/token", methods=["POST"])
@limiter.limit(lambda: _limit("LOGIN_RATE_LIMIT", "10 per minute"))
@limiter.shared_limit(
    lambda: _limit("LOGIN_ACCOUNT_RATE_LIMIT", "10 per minute"), LOGIN_ACCOUNT_SCOPE, key_func=_typed_email_key
)
@blp.arguments(TokenIn)
@blp.response(201, TokensOut)
@blp.doc(security=[])
def sign_in(body: dict[str, Any]) -> dict[str, Any]:
    """Sign in: a new device with its access and refresh tokens."""
    try:
        user = services.authenticate(body["email"], body["password"])
    except services.LoginRefusedError as refused:
        db.session.rollback()
        if refused.reason == "credentials":
            raise ApiProblem(401, "invalid_credentials", _WRONG_CREDENTIALS) from None
        # The password was right: the account's state may be said (closed, blocked, unconfirmed).
        known = services.find_user_by_email(body["email"])
        if known is None:  # deleted in between: as unknown
            raise ApiProblem(401, "invalid_credentials", _WRONG_CREDENTIALS) from None
        refuse_unusable(known)
        raise ApiProblem(403, "account_blocked", _l("This account is blocked. Please contact support.")) from None
    try:
        refuse_unusable(user)
    except ApiProblem:
        db.session.rollback()  # no "last login" for a sign-in we refuse
        raise
    issued = api_tokens.sign_in_device(user, body["device_name"])
    db.session.commit()
    return _tokens(issued)


@blp.route("/refresh", methods=["POST"])
@limiter.limit(lambda: _limit("API_REFRESH_RATE_LIMIT", "30 per minute;500 per day"))
@blp.arguments(RefreshIn)
@blp.response(200, TokensOut)
@blp.doc(security=[])
def refresh(body: dict[str, Any]) -> dict[str, Any]:
    """A new token pair for the refresh token, which dies. Using an old refresh token again signs the device out."""
    try:
        issued = api_tokens.refresh_tokens(body["refresh_token"])
    except RefreshTokenReusedError:
        db.session.commit()  # the revocation stands
        raise ApiProblem(
            401,
            "refresh_token_reused",
            _l("For your safety this device was signed out. Please sign in again."),
            detail="This refresh token was already used: the device is revoked.",
        ) from None
    if issued is None:
        db.session.rollback()
        raise ApiProblem(401, "invalid_token", _l("You are signed out. Please sign in again."))
    try:
        refuse_unusable(issued.device.user)
    except ApiProblem:
        db.session.rollback()
        raise
    db.session.commit()
    return _tokens(issued)
