"""``/api/v1/me``: the driver's profile (name, address, language, company) through ``accounts.services``."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from app.accounts import services
from app.accounts.models import LANGUAGES, SUPPORTED_COUNTRIES, Account
from app.api.auth import current_account, current_driver
from app.api.blueprints import ApiBlueprint
from app.api.problems import ApiProblem, field_problem
from app.api.schemas import text
from app.extensions import db

blp = ApiBlueprint("api_me", __name__, tag="Profile", url_prefix="/api/v1/me", description="The driver's profile")

PROFILE_FIELDS = ("full_name", "street", "postal_code", "city", "country", "language", "company_name", "vat_number")


class MeOut(Schema):
    email = fields.String(required=True, metadata={"description": "Sign-in and notification address."})
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


def _present(account: Account) -> dict[str, Any]:
    user = current_driver()
    return {
        "email": user.email,
        "email_confirmed": user.is_confirmed,
        **{name: getattr(account, name) for name in PROFILE_FIELDS},
        "is_business": account.is_business,
    }


@blp.route("", methods=["GET"])
@blp.response(200, MeOut)
def show() -> dict[str, Any]:
    """The signed-in driver's profile."""
    return _present(current_account())


@blp.route("", methods=["PATCH"])
@blp.arguments(MeIn)
@blp.response(200, MeOut)
def change(body: dict[str, Any]) -> dict[str, Any]:
    """Change some of the profile; the others stay. The language is that of emails, invoices and this API."""
    account = current_account()
    profile = services.DriverProfile(**{name: body.get(name, getattr(account, name)) for name in PROFILE_FIELDS})
    try:
        services.update_profile(current_driver(), profile)
    except services.AccountError as error:
        db.session.rollback()
        message = _l(str(error))
        if error.field:
            raise field_problem(error.field, message) from None
        raise ApiProblem(422, "validation_failed", message, detail=str(error)) from None
    db.session.commit()
    return _present(account)
