"""``/api/v1/plan``: the driver's plan, the plans they may switch to with their prices, switching, and cancelling a
switch scheduled for next month, through ``plans.services`` (upgrades count at once, downgrades from the 1st)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields

from app.accounts.services import send_pending
from app.api.auth import current_account, current_driver
from app.api.blueprints import ApiBlueprint
from app.api.problems import ApiProblem, field_problem
from app.api.schemas import MoneyOut, RateOut, decimal_text, money, rate, text
from app.audit.services import Actor
from app.db import utcnow
from app.extensions import db
from app.i18n import message_of
from app.plans import services
from app.plans.models import Plan
from app.plans.notices import plan_change_emails

blp = ApiBlueprint("api_plan", __name__, tag="Plan", url_prefix="/api/v1/plan", description="The driver's plan")


class PlanOut(Schema):
    code = fields.String(required=True, metadata={"example": "comfort"})
    version = fields.Integer(required=True)
    name = fields.String(required=True, metadata={"description": "In the account's language."})
    description = fields.String(required=True)
    monthly_fee = fields.Nested(MoneyOut, required=True)
    markup_percent = fields.String(required=True, metadata={"description": "Percent on the operator's price."})
    markup_per_kwh = fields.Nested(RateOut, required=True)
    session_fee = fields.Nested(RateOut, required=True)
    session_fee_cap_per_month = fields.Nested(MoneyOut, required=True, allow_none=True)
    business_only = fields.Boolean(required=True)


class ScheduledChangeOut(Schema):
    plan = fields.Nested(PlanOut, required=True)
    starts_at = fields.DateTime(required=True)


class PlanStateOut(Schema):
    current = fields.Nested(PlanOut, required=True, allow_none=True)
    scheduled_change = fields.Nested(ScheduledChangeOut, required=True, allow_none=True)
    options = fields.List(fields.Nested(PlanOut), required=True, metadata={"description": "Plans open to you."})


class ChangeIn(Schema):
    code = text(40, required=True, min_length=1, metadata={"example": "comfort"})


def present_plan(plan: Plan, language: str) -> dict[str, Any]:
    cap = plan.session_fee_cap_per_month
    return {
        "code": plan.code,
        "version": plan.version,
        "name": plan.name_in(language),
        "description": (plan.descriptions or {}).get(language) or (plan.descriptions or {}).get("en") or "",
        "monthly_fee": money(plan.monthly_fee, plan.currency),
        "markup_percent": decimal_text(plan.markup_percent),
        "markup_per_kwh": rate(plan.markup_per_kwh, plan.currency),
        "session_fee": rate(plan.session_fee, plan.currency),
        "session_fee_cap_per_month": money(cap, plan.currency) if cap is not None else None,
        "business_only": plan.business_only,
    }


def _state() -> dict[str, Any]:
    account = current_account()
    now = utcnow()
    current = services.plan_at(account.id, now)
    pending = services.pending_change(account.id, now)
    return {
        "current": present_plan(current, account.language) if current else None,
        "scheduled_change": (
            {"plan": present_plan(pending.plan, account.language), "starts_at": pending.starts_at} if pending else None
        ),
        "options": [present_plan(plan, account.language) for plan in services.plans_open_to(account)],
    }


def _change_to(plan: Plan) -> None:
    account = current_account()
    try:
        subscription = services.change_plan(account, plan, Actor.of(current_driver()))
    except services.PlanError as error:
        db.session.rollback()
        raise ApiProblem(409, "plan_refused", message_of(error), detail=str(error)) from None
    emails = plan_change_emails(account, subscription)
    db.session.commit()
    send_pending(emails)


@blp.route("", methods=["GET"])
@blp.response(200, PlanStateOut)
def show() -> dict[str, Any]:
    """The plan in force, a switch scheduled for next month (if any), and the plans open to this account."""
    return _state()


@blp.route("", methods=["POST"])
@blp.arguments(ChangeIn)
@blp.response(200, PlanStateOut)
def change(body: dict[str, Any]) -> dict[str, Any]:
    """Switch plan: a dearer plan counts at once, a cheaper one from the 1st of next month."""
    plan = services.current_version(body["code"].strip().lower())
    if plan is None:
        raise field_problem("code", _l("There is no plan with this code."), code="plan_not_found")
    _change_to(plan)
    return _state()


@blp.route("/scheduled-change", methods=["DELETE"])
@blp.response(200, PlanStateOut)
def cancel_scheduled_change() -> dict[str, Any]:
    """Keep the current plan: the switch scheduled for next month is dropped."""
    account = current_account()
    now = utcnow()
    current = services.plan_at(account.id, now)
    if current is None or services.pending_change(account.id, now) is None:
        raise ApiProblem(404, "no_scheduled_change", _l("No plan change is scheduled."))
    try:
        stretch = services.cancel_pending_change(account, Actor.of(current_driver()), now=now)
    except services.PlanError as error:
        db.session.rollback()
        raise ApiProblem(409, "plan_refused", message_of(error), detail=str(error)) from None
    emails = plan_change_emails(account, stretch, cancelled=True)
    db.session.commit()
    send_pending(emails)
    return _state()
