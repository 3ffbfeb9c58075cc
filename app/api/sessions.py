"""``/api/v1/sessions``: the driver's charging history (rated sessions), filtered by month and card, paged by cursor;
and one session with how its price was built.

What a session costs, and its state (invoiced, on the next invoice, under review, not charged), are billing's rules:
both come from ``billing.session_history``, the query and line the portal's history page uses, only paged here by
a key (start, id) instead of a page number. The live session, remote start and stop are another module's.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate
from sqlalchemy import and_, or_

from app.api.auth import current_account_id
from app.api.blueprints import ID, ApiBlueprint
from app.api.pagination import PageArgs, decode_cursor, encode_cursor, page_schema, time_key
from app.api.problems import ApiProblem, field_problem
from app.api.schemas import MoneyOut, decimal_text, money
from app.billing import session_history as history
from app.billing.invoicing.invoices import BillingError
from app.charging.models import Cdr
from app.charging.services import place_in_cdr
from app.extensions import db
from app.rating.models import SessionCharge

blp = ApiBlueprint(
    "api_sessions", __name__, tag="Sessions", url_prefix="/api/v1/sessions", description="Charging history"
)

STATES = ("invoiced", "to_invoice", "under_review", "not_charged")


class PricingNoteOut(Schema):
    period = fields.Integer(required=True, metadata={"description": "Index of the charging period in the CDR."})
    kind = fields.String(required=True, metadata={"example": "before_start"})
    started = fields.DateTime(required=True)
    counted_from = fields.DateTime(required=True)
    reference = fields.DateTime(required=True)


class SessionOut(Schema):
    id = fields.Integer(required=True)
    started_at = fields.DateTime(required=True)
    ended_at = fields.DateTime(required=True)
    card_id = fields.Integer(required=True, allow_none=True)
    location = fields.String(required=True)
    city = fields.String(required=True)
    evse_id = fields.String(required=True)
    kwh = fields.String(required=True, metadata={"description": "Exact decimal.", "example": "20.0000"})
    duration_minutes = fields.Integer(required=True)
    state = fields.String(required=True, validate=validate.OneOf(STATES))
    invoice_number = fields.String(required=True, allow_none=True)
    operator_price = fields.Nested(MoneyOut, required=True, metadata={"description": "Excl. VAT."})
    our_fees = fields.Nested(MoneyOut, required=True, metadata={"description": "Excl. VAT."})
    correction = fields.Nested(MoneyOut, required=True, metadata={"description": "Excl. VAT, after review."})
    correction_reason = fields.String(required=True, allow_none=True)
    total = fields.Nested(MoneyOut, required=True, metadata={"description": "Incl. VAT: what you pay."})
    pricing_notes = fields.List(fields.Nested(PricingNoteOut), required=True)


class OperatorPartOut(Schema):
    """The operator's price by dimension, as priced from its tariff (excl. VAT)."""

    energy_kwh = fields.String(required=True)
    energy = fields.Nested(MoneyOut, required=True)
    time_hours = fields.String(required=True)
    time = fields.Nested(MoneyOut, required=True)
    parking_hours = fields.String(required=True)
    parking = fields.Nested(MoneyOut, required=True)
    fixed = fields.Nested(MoneyOut, required=True)


class BreakdownOut(Schema):
    tariff_source = fields.String(required=True, metadata={"example": "frozen_tariff"})
    plan_code = fields.String(required=True, allow_none=True)
    operator = fields.Nested(
        OperatorPartOut,
        required=True,
        allow_none=True,
        metadata={"description": "null when the operator's total was taken as it sent it"},
    )
    operator_total = fields.Nested(MoneyOut, required=True)
    markup_percent = fields.Nested(MoneyOut, required=True)
    markup_per_kwh = fields.Nested(MoneyOut, required=True)
    session_fee = fields.Nested(MoneyOut, required=True)
    total_excl_vat = fields.Nested(MoneyOut, required=True)
    vat_rate = fields.String(required=True, metadata={"example": "21.000"})
    vat = fields.Nested(MoneyOut, required=True)
    total_incl_vat = fields.Nested(MoneyOut, required=True)


class SessionDetailOut(SessionOut):
    breakdown = fields.Nested(BreakdownOut, required=True, metadata={"description": "The price as rated."})


SessionPage = page_schema(SessionOut, "SessionPage")


class SessionListArgs(PageArgs):
    # This century only: a month is a billing period, and year 0 or 9999 has no bounds a datetime can hold.
    month = fields.String(validate=validate.Regexp(r"^20\d\d-(0[1-9]|1[0-2])$"), metadata={"example": "2026-10"})
    card = fields.Integer(validate=validate.Range(min=1, max=2147483647), metadata={"description": "A card id."})


def present(row: Any) -> dict[str, Any]:
    line = history._line(row)  # billing's own reading of the row: state, total, correction
    cdr: Cdr = row[1]
    currency = line.currency
    return {
        "id": cdr.id,
        "started_at": line.start,
        "ended_at": cdr.end_date_time,
        "card_id": line.card_id,
        "location": line.location,
        "city": line.city,
        "evse_id": place_in_cdr(cdr).evse_id,
        "kwh": decimal_text(line.kwh),
        "duration_minutes": line.minutes,
        "state": line.state,
        "invoice_number": line.invoice,
        "operator_price": money(line.cpo_price, currency),
        "our_fees": money(line.fees, currency),
        "correction": money(line.correction, currency),
        "correction_reason": line.correction_reason,
        "total": money(line.total, currency),
        "pricing_notes": [
            {
                "period": note.period,
                "kind": note.kind,
                "started": note.started,
                "counted_from": note.counted_from,
                "reference": note.reference,
            }
            for note in line.pricing_notes
        ],
    }


def _operator_part(charge: SessionCharge) -> dict[str, Any] | None:
    cpo = (charge.breakdown or {}).get("cpo") or {}
    if "total_energy_cost" not in cpo:
        return None  # priced from the total the operator sent: no split by dimension
    currency = charge.currency

    def cost(name: str) -> dict[str, Any]:
        return money(Decimal(cpo[name]["excl_vat"]), currency)

    return {
        "energy_kwh": cpo["total_energy"],
        "energy": cost("total_energy_cost"),
        "time_hours": cpo["total_time"],
        "time": cost("total_time_cost"),
        "parking_hours": cpo["total_parking_time"],
        "parking": cost("total_parking_cost"),
        "fixed": cost("total_fixed_cost"),
    }


def _breakdown(charge: SessionCharge) -> dict[str, Any]:
    currency = charge.currency
    plan = (charge.breakdown or {}).get("plan") or {}
    return {
        "tariff_source": charge.tariff_source,
        "plan_code": plan.get("code"),
        "operator": _operator_part(charge),
        "operator_total": money(charge.cpo_cost_excl_vat, currency),
        "markup_percent": money(charge.markup_percent_amount, currency),
        "markup_per_kwh": money(charge.markup_per_kwh_amount, currency),
        "session_fee": money(charge.session_fee, currency),
        "total_excl_vat": money(charge.driver_excl_vat, currency),
        "vat_rate": decimal_text(charge.vat_rate),
        "vat": money(charge.vat_amount, currency),
        "total_incl_vat": money(charge.driver_incl_vat, currency),
    }


def _filters(args: dict[str, Any]) -> history.SessionFilters:
    card = args.get("card")
    try:
        return history.session_filters(args.get("month") or "", str(card) if card else "")
    except BillingError as error:
        raise field_problem("month", _l("Give a month like 2026-10."), code="validation_failed") from error


@blp.route("", methods=["GET"])
@blp.arguments(SessionListArgs, location="query")
@blp.response(200, SessionPage)
def session_list(args: dict[str, Any]) -> dict[str, Any]:
    """The driver's priced sessions, newest first; `month` (YYYY-MM, billing time zone) and `card` filter."""
    query = history._sessions_query(current_account_id(), _filters(args))
    if args.get("cursor"):
        started, cdr_id = decode_cursor("sessions", args["cursor"])
        if not isinstance(started, str) or not isinstance(cdr_id, int):
            raise ApiProblem(
                400, "invalid_cursor", _l("This list position is not valid. Start again from the first page.")
            )
        moment = dt.datetime.fromisoformat(started)
        query = query.where(or_(Cdr.start_date_time < moment, and_(Cdr.start_date_time == moment, Cdr.id < cdr_id)))
    limit: int = args["limit"]
    rows = db.session.execute(query.limit(limit + 1)).all()
    shown = rows[:limit]
    last: Cdr | None = shown[-1][1] if shown and len(rows) > limit else None
    return {
        "items": [present(row) for row in shown],
        "next": encode_cursor("sessions", (time_key(last.start_date_time), last.id)) if last is not None else None,
    }


@blp.route(f"/<{ID}:session_id>", methods=["GET"])
@blp.response(200, SessionDetailOut)
def session_detail(session_id: int) -> dict[str, Any]:
    """One session of the driver, with its price as rated: the operator's part by dimension, our fees, VAT."""
    query = history._sessions_query(current_account_id(), history.SessionFilters()).where(Cdr.id == session_id)
    row = db.session.execute(query.limit(1)).first()
    if row is None:
        raise ApiProblem(404, "session_not_found", _l("This session does not exist or is not yours."))
    return {**present(row), "breakdown": _breakdown(row[0])}
