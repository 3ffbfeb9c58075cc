"""``/api/v1/me``: the driver's profile (name, address, language, company) through ``accounts.services``, and the
address of the account's notices (``accounts.notices``: set here, used once confirmed by the link mailed to it)."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import current_app, request
from marshmallow import Schema, fields, validate
from werkzeug.exceptions import RequestEntityTooLarge

from app.accounts import notices, services
from app.accounts.models import LANGUAGES, SUPPORTED_COUNTRIES, Account
from app.api.auth import current_account, current_driver
from app.api.blueprints import MAX_BODY_BYTES, ApiBlueprint
from app.api.problems import ApiProblem, field_problem
from app.api.schemas import text
from app.extensions import db, limiter
from app.i18n import message_of
from app.ocpi_values import load_json

blp = ApiBlueprint("api_me", __name__, tag="Profile", url_prefix="/api/v1/me", description="The driver's profile")

PROFILE_FIELDS = ("full_name", "street", "postal_code", "city", "country", "language", "company_name", "vat_number")


class MeOut(Schema):
    email = fields.String(required=True, metadata={"description": "Sign-in address."})
    email_confirmed = fields.Boolean(required=True)
    full_name = fields.String(required=True)
    street = fields.String(required=True)
    postal_code = fields.String(required=True)
    city = fields.String(required=True)
    country = fields.String(required=True, metadata={"example": "BE"})
    language = fields.String(required=True, metadata={"description": "Emails, invoices and API messages."})
    company_name = fields.String(required=True, allow_none=True)
    vat_number = fields.String(required=True, allow_none=True)
    is_business = fields.Boolean(required=True)
    notification_email = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "Where invoices, payment and card notices go (confirmed). null: to the sign-in address."
        },
    )
    notification_email_pending = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "An address set but not confirmed yet: we mailed it a link to confirm it."},
    )


class MeIn(Schema):
    """Only the fields sent change."""

    full_name = text(200, min_length=1)
    street = text(200, min_length=1)
    postal_code = text(20, min_length=1)
    city = text(100, min_length=1)
    country = fields.String(validate=validate.OneOf(SUPPORTED_COUNTRIES))
    language = fields.String(validate=validate.OneOf(LANGUAGES))
    company_name = text(200, allow_none=True)
    vat_number = text(20, allow_none=True)
    notification_email = text(
        notices.EMAIL_MAX_LENGTH,
        allow_none=True,
        metadata={
            "description": "A separate address for notices: used once confirmed by the link we mail to it. "
            "null or empty: notices go to the sign-in address again."
        },
    )


def _asks_for_a_link() -> bool:
    """Whether this PATCH sets a notification address (which mails a link): only those count against the limit."""
    request.max_content_length = MAX_BODY_BYTES  # read before the blueprint caps it
    try:
        body = load_json(request.get_data(cache=True)) if request.is_json else None
    except (ValueError, RecursionError, RequestEntityTooLarge):
        return False
    return isinstance(body, dict) and bool(body.get("notification_email"))


def _device_key() -> str:
    # The limiter checks before the blueprint authenticates: the bearer token (its digest) stands for the device.
    return "notify:" + hashlib.sha256(request.headers.get("Authorization", "").encode()).hexdigest()


def _present(account: Account) -> dict[str, Any]:
    user = current_driver()
    return {
        "email": user.email,
        "email_confirmed": user.is_confirmed,
        **{name: getattr(account, name) for name in PROFILE_FIELDS},
        "is_business": account.is_business,
        "notification_email": account.notification_email,
        "notification_email_pending": account.notification_email_pending,
    }


@blp.route("", methods=["GET"])
@blp.response(200, MeOut)
def show() -> dict[str, Any]:
    """The signed-in driver's profile."""
    return _present(current_account())


@blp.route("", methods=["PATCH"])
# Each new address is mailed a link: as many as the portal's reset links allow, so nobody is mailed in bulk.
@limiter.limit(
    lambda: str(current_app.config["RESET_RATE_LIMIT"]),
    key_func=_device_key,
    exempt_when=lambda: not _asks_for_a_link(),
)
@blp.arguments(MeIn)
@blp.response(200, MeOut)
def change(body: dict[str, Any]) -> dict[str, Any]:
    """Change some of the profile; the others stay. The language is that of emails, invoices and this API. A new
    `notification_email` is mailed a link and used once confirmed (`notification_email_pending` until then)."""
    account = current_account()
    driver = current_driver()
    profile = services.DriverProfile(**{name: body.get(name, getattr(account, name)) for name in PROFILE_FIELDS})
    emails: list[services.PendingEmail] = []
    try:
        services.update_profile(driver, profile)
        if "notification_email" in body:
            emails = notices.set_notification_email(driver, body["notification_email"])
    except services.AccountError as error:
        db.session.rollback()
        message = message_of(error)
        if error.field:
            raise field_problem(error.field, message) from None
        raise ApiProblem(422, "validation_failed", message, detail=str(error)) from None
    db.session.commit()
    services.send_pending(emails)
    return _present(account)
