"""``GET /api/v1/sessions/active``: the driver's sessions under way with the cost so far under their plan.

The figures are ``rating.live_cost``'s: as of the CPO's last Session update, the cost by the engine that bills (the
tariff frozen at the start, over the charging periods so far) with our fees and VAT. They change only when the CPO
sends an update, so the answer carries an ``ETag`` and an app polling with ``If-None-Match`` gets an empty 304
while nothing changed. The ``id`` of a session here is the one ``POST /api/v1/sessions/{id}/stop`` takes (a session
under way has no CDR yet: the history's ids are the CDRs').
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Response, request
from marshmallow import Schema, fields, validate

from app.api.auth import current_account_id
from app.api.blueprints import ApiBlueprint
from app.api.schemas import MoneyOut, decimal_text, money
from app.ocpi_ids import ci_key
from app.rating.live_cost import (
    CHARGING_PERIODS,
    CPO_TOTAL_COST,
    FROZEN_TARIFF,
    NO_PLAN,
    NO_TARIFF,
    NOT_PRICEABLE,
    SESSION_TOTALS,
    LiveCost,
    live_costs_of,
    versions_tag,
)
from app.roaming.models import Command, CommandState
from app.roaming.places import places_of
from app.roaming.send.remote import latest_stops, shown_state

blp = ApiBlueprint("api_live", __name__, tag="Live session", url_prefix="/api/v1/sessions", description="Charging now")

ETAG_HEADER = {
    "ETag": {"description": "The version of the answer: send it back as If-None-Match.", "schema": {"type": "string"}}
}


class LocationRefOut(Schema):
    country_code = fields.String(required=True, metadata={"example": "NL"})
    party_id = fields.String(required=True, metadata={"example": "TCP"})
    id = fields.String(required=True, metadata={"description": "The operator's location id."})
    name = fields.String(required=True, allow_none=True)
    city = fields.String(required=True, allow_none=True)


class CostSoFarOut(Schema):
    source = fields.String(
        required=True,
        validate=validate.OneOf([FROZEN_TARIFF, CPO_TOTAL_COST]),
        metadata={"description": "frozen_tariff: the operator's tariff at the start; cpo_total_cost: its own total."},
    )
    basis = fields.String(
        required=True,
        validate=validate.OneOf([CHARGING_PERIODS, SESSION_TOTALS, CPO_TOTAL_COST]),
        metadata={"description": "What was priced: the charging periods so far, or the kWh and time as one period."},
    )
    operator_price = fields.Nested(MoneyOut, required=True, metadata={"description": "Excl. VAT."})
    our_fees = fields.Nested(MoneyOut, required=True, metadata={"description": "Excl. VAT."})
    total_excl_vat = fields.Nested(MoneyOut, required=True)
    vat_rate = fields.String(required=True, metadata={"example": "21.00"})
    vat = fields.Nested(MoneyOut, required=True)
    total = fields.Nested(MoneyOut, required=True, metadata={"description": "Incl. VAT: what you pay so far."})


class OperatorTotalOut(Schema):
    excl_vat = fields.Nested(MoneyOut, required=True)
    incl_vat = fields.Nested(MoneyOut, required=True, allow_none=True)


class StopRequestOut(Schema):
    command_id = fields.Integer(required=True)
    state = fields.String(required=True, validate=validate.OneOf([state.value for state in CommandState]))


class LiveSessionOut(Schema):
    id = fields.Integer(required=True, metadata={"description": "For POST /api/v1/sessions/{id}/stop."})
    status = fields.String(required=True, validate=validate.OneOf(["PENDING", "ACTIVE"]))
    location = fields.Nested(LocationRefOut, required=True)
    evse_uid = fields.String(required=True)
    connector_id = fields.String(required=True)
    card_id = fields.Integer(required=True, allow_none=True)
    started_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True, metadata={"description": "The operator's last update: as of then."})
    duration_seconds = fields.Integer(required=True, metadata={"description": "From the start to updated_at."})
    kwh = fields.String(required=True, metadata={"description": "Exact decimal.", "example": "12.5000"})
    average_power_kw = fields.String(required=True, allow_none=True)
    current_power_kw = fields.String(required=True, allow_none=True)
    state_of_charge_percent = fields.String(required=True, allow_none=True)
    cost_so_far = fields.Nested(CostSoFarOut, required=True, allow_none=True)
    cost_missing = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf([NO_PLAN, NO_TARIFF, NOT_PRICEABLE]),
        metadata={"description": "Why there is no cost so far yet."},
    )
    operator_total_cost = fields.Nested(
        OperatorTotalOut,
        required=True,
        allow_none=True,
        metadata={"description": "The operator's own total_cost, as it sent it (before our fees)."},
    )
    stop_request = fields.Nested(StopRequestOut, required=True, allow_none=True)


class ActiveSessionsOut(Schema):
    items = fields.List(fields.Nested(LiveSessionOut), required=True)
    version = fields.String(required=True, metadata={"description": "The same as the ETag."})


def _text(value: Any) -> str | None:
    return decimal_text(value) if value is not None else None


def present(live: LiveCost, place: Any, stop: Command | None) -> dict[str, Any]:
    cost = live.cost
    total = live.cpo_total
    return {
        "id": live.session_id,
        "status": live.status,
        "location": {
            "country_code": live.location.country_code,
            "party_id": live.location.party_id,
            "id": live.location.location_id,
            "name": place.name,
            "city": place.city,
        },
        "evse_uid": live.evse_uid,
        "connector_id": live.connector_id,
        "card_id": live.card_id,
        "started_at": live.started_at,
        "updated_at": live.as_of,
        "duration_seconds": int(live.duration.total_seconds()),
        "kwh": decimal_text(live.kwh),
        "average_power_kw": _text(live.average_power_kw),
        "current_power_kw": _text(live.current_power_kw),
        "state_of_charge_percent": _text(live.state_of_charge),
        "cost_so_far": None
        if cost is None
        else {
            "source": cost.source,
            "basis": cost.basis,
            "operator_price": money(cost.price.cpo_cost, cost.currency),
            "our_fees": money(cost.price.margin, cost.currency),
            "total_excl_vat": money(cost.price.excl_vat, cost.currency),
            "vat_rate": decimal_text(cost.price.vat_rate),
            "vat": money(cost.price.vat, cost.currency),
            "total": money(cost.price.incl_vat, cost.currency),
        },
        "cost_missing": live.cost_missing,
        "operator_total_cost": None
        if total is None
        else {
            "excl_vat": money(total.excl_vat, total.currency),
            "incl_vat": money(total.incl_vat, total.currency) if total.incl_vat is not None else None,
        },
        "stop_request": None if stop is None else {"command_id": stop.id, "state": shown_state(stop).value},
    }


@blp.route("/active", methods=["GET"])
@blp.response(200, ActiveSessionsOut, headers=ETAG_HEADER)
@blp.alt_response(304, description="Not modified: the version sent as If-None-Match is still current.")
def active_sessions() -> Any:
    """The sessions under way (newest first) with kWh, duration, power and the cost so far under your plan."""
    account_id = current_account_id()  # the token check read it: no query for the account
    costs = live_costs_of(account_id)
    stops = latest_stops(account_id) if costs else {}
    shown = [(live, stops.get((live.partner_id, ci_key(live.ocpi_id)))) for live in costs]
    digest = hashlib.sha256(versions_tag(costs).encode())
    for _live, stop in shown:
        digest.update(repr((stop.id, shown_state(stop).value) if stop else None).encode())
    tag = digest.hexdigest()[:32]
    if request.if_none_match.contains(tag):
        response = Response(status=304)
        response.set_etag(tag)
        return response
    places = places_of(live.location for live in costs)
    body = {"items": [present(live, places[live.location], stop) for live, stop in shown], "version": tag}
    return body, 200, {"ETag": f'"{tag}"'}
