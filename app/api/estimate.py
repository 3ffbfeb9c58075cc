"""``GET /api/v1/estimate``: what charging at a connector would cost the driver, before charging.

The rating estimate (``rating.estimates.estimate_for_connector``): the operator's tariff in force now, priced by the
engine that bills, and our fees under the driver's plan, kept apart as AFIR asks; with an example session (20 kWh in
one hour unless the app asks for another).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from app.api.auth import current_account
from app.api.blueprints import ApiBlueprint
from app.api.problems import ApiProblem
from app.api.schemas import MoneyOut, RateOut, decimal_text, money, rate, text
from app.extensions import db
from app.pricing import Estimate, PricingError
from app.rating.estimates import EXAMPLE_DURATION, EXAMPLE_KWH, estimate_for_connector
from app.rating.problems import RatingError
from app.roaming.models import Location
from app.roaming.receive.location_validation import UnknownObjectError

blp = ApiBlueprint(
    "api_estimate", __name__, tag="Estimate", url_prefix="/api/v1/estimate", description="Price before charging"
)

# The unit a published price is per, by OCPI dimension.
UNITS = {"ENERGY": "kWh", "TIME": "hour", "PARKING_TIME": "hour", "FLAT": "session"}


class EstimateArgs(Schema):
    location = fields.Integer(required=True, validate=validate.Range(min=1, max=2147483647))
    evse_uid = text(36, required=True, min_length=1)
    connector_id = text(36, required=True, min_length=1)
    kwh = fields.Integer(validate=validate.Range(min=1, max=500), metadata={"description": "Whole kWh; default 20."})
    minutes = fields.Integer(validate=validate.Range(min=1, max=1440), metadata={"description": "Default 60."})


class ComponentOut(Schema):
    dimension = fields.String(required=True, metadata={"example": "ENERGY"})
    unit = fields.String(required=True, metadata={"example": "kWh"})
    price = fields.Nested(RateOut, required=True, metadata={"description": "Excl. VAT, per unit."})
    vat_rate = fields.String(required=True, allow_none=True)
    step_size = fields.Integer(required=True)


class FeesOut(Schema):
    markup_percent = fields.String(required=True)
    markup_per_kwh = fields.Nested(RateOut, required=True)
    session_fee = fields.Nested(RateOut, required=True)
    monthly_fee = fields.Nested(MoneyOut, required=True)


class ExampleOut(Schema):
    kwh = fields.String(required=True)
    duration_minutes = fields.Integer(required=True)
    operator_price = fields.Nested(MoneyOut, required=True, metadata={"description": "Excl. VAT."})
    our_fees = fields.Nested(MoneyOut, required=True, metadata={"description": "Excl. VAT."})
    total_excl_vat = fields.Nested(MoneyOut, required=True)
    vat_rate = fields.String(required=True)
    vat = fields.Nested(MoneyOut, required=True)
    total = fields.Nested(MoneyOut, required=True, metadata={"description": "Incl. VAT."})


class EstimateOut(Schema):
    currency = fields.String(required=True)
    operator_components = fields.List(fields.Nested(ComponentOut), required=True)
    operator_min_price = fields.Nested(MoneyOut, required=True, allow_none=True)
    operator_max_price = fields.Nested(MoneyOut, required=True, allow_none=True)
    our_fees = fields.Nested(FeesOut, required=True)
    example = fields.Nested(ExampleOut, required=True)


def present(found: Estimate) -> dict[str, Any]:
    currency = found.currency
    driver = found.example_driver
    return {
        "currency": currency,
        "operator_components": [
            {
                "dimension": component.dimension,
                "unit": UNITS.get(component.dimension, component.dimension.lower()),
                "price": rate(component.price, currency),
                "vat_rate": decimal_text(component.vat) if component.vat is not None else None,
                "step_size": component.step_size,
            }
            for component in found.cpo_components
        ],
        "operator_min_price": money(found.cpo_min_price.excl_vat, currency) if found.cpo_min_price else None,
        "operator_max_price": money(found.cpo_max_price.excl_vat, currency) if found.cpo_max_price else None,
        "our_fees": {
            "markup_percent": decimal_text(found.our_fees.markup_percent),
            "markup_per_kwh": rate(found.our_fees.markup_per_kwh, currency),
            "session_fee": rate(found.our_fees.session_fee, currency),
            "monthly_fee": money(found.our_fees.monthly_fee, currency),
        },
        "example": {
            "kwh": decimal_text(found.example_kwh),
            "duration_minutes": int(found.example_duration.total_seconds() // 60),
            "operator_price": money(driver.cpo_cost, currency),
            "our_fees": money(driver.margin, currency),
            "total_excl_vat": money(driver.excl_vat, currency),
            "vat_rate": decimal_text(driver.vat_rate),
            "vat": money(driver.vat, currency),
            "total": money(driver.incl_vat, currency),
        },
    }


@blp.route("", methods=["GET"])
@blp.arguments(EstimateArgs, location="query")
@blp.response(200, EstimateOut)
def estimate(args: dict[str, Any]) -> dict[str, Any]:
    """The price at a connector under the driver's plan: the operator's components, our fees, an example."""
    location = db.session.get(Location, args["location"])
    if location is None or not location.publish:
        raise ApiProblem(404, "location_not_found", _l("This charging location is not known."))
    kwh = Decimal(args["kwh"]) if args.get("kwh") else EXAMPLE_KWH
    duration = dt.timedelta(minutes=args["minutes"]) if args.get("minutes") else EXAMPLE_DURATION
    try:
        found = estimate_for_connector(
            location, args["evse_uid"], args["connector_id"], account=current_account(), kwh=kwh, duration=duration
        )
    except UnknownObjectError:
        raise ApiProblem(404, "connector_not_found", _l("This charging location has no such connector.")) from None
    except RatingError as error:
        raise ApiProblem(
            404, "no_tariff", _l("The operator publishes no price for this connector."), detail=str(error)
        ) from None
    except PricingError as error:
        raise ApiProblem(
            422, "price_unknown", _l("The price at this connector cannot be estimated."), detail=str(error)
        ) from None
    return present(found)
