"""Plan catalogue and plan history.

Effective dates: an *upgrade* (higher monthly fee) takes effect at once; a *downgrade* (lower or equal fee,
including going back to pay-as-you-go, which is how a subscription is cancelled) at the start of the next
calendar month in the billing time zone. Billing asks :func:`plan_at` which terms applied at time T and
:func:`prorated_monthly_fees` what the month's subscription fee is.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NotRequired, TypedDict
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app.accounts.models import Account
from app.audit.services import Actor, record
from app.db import utcnow
from app.extensions import db
from app.money import quantize
from app.plans.models import Plan, Subscription
from app.pricing import PlanTerms

DEFAULT_PLAN_CODE = "payg"


class PlanError(ValueError):
    pass


class AccountClosedError(PlanError):
    """The account is closed: its plan ended with the closure and no plan can be chosen for it any more."""


CLOSED_ACCOUNT_MESSAGE = _l("This account is closed: nothing can be ordered or changed on it.")


TERM_FIELDS = (
    "monthly_fee",
    "markup_percent",
    "markup_per_kwh",
    "session_fee",
    "session_fee_cap_per_month",
    "currency",
)


def terms_of(plan: Plan) -> PlanTerms:
    """The plan version's terms as the pure pricing package takes them."""
    return PlanTerms(**{name: getattr(plan, name) for name in TERM_FIELDS})


class PlanSpec(TypedDict):
    """A standard plan, as :func:`seed_default_plans` creates it."""

    code: str
    names: dict[str, str]
    descriptions: dict[str, str]
    monthly_fee: Decimal
    markup_percent: Decimal
    markup_per_kwh: Decimal
    session_fee: Decimal
    session_fee_cap_per_month: Decimal | None
    business_only: NotRequired[bool]


class PlanChanges(TypedDict, total=False):
    """What :func:`revise_plan` may change: the terms (:data:`TERM_FIELDS`), the names, whether it is open."""

    monthly_fee: Decimal
    markup_percent: Decimal
    markup_per_kwh: Decimal
    session_fee: Decimal
    session_fee_cap_per_month: Decimal | None
    currency: str
    names: dict[str, str]
    open_to_new: bool


DEFAULT_PLANS: list[PlanSpec] = [
    {
        "code": "payg",
        "names": {"en": "Pay as you go", "nl": "Betalen per gebruik", "fr": "Paiement à l'usage"},
        "descriptions": {
            "en": "No monthly fee. A small fee per kWh and per session.",
            "nl": "Geen maandbedrag. Een kleine toeslag per kWh en per sessie.",
            "fr": "Pas d'abonnement mensuel. Un petit supplément par kWh et par session.",
        },
        "monthly_fee": Decimal("0"),
        "markup_percent": Decimal("0"),
        "markup_per_kwh": Decimal("0.0500"),
        "session_fee": Decimal("0.3500"),
        "session_fee_cap_per_month": None,
    },
    {
        "code": "comfort",
        "names": {"en": "Comfort", "nl": "Comfort", "fr": "Confort"},
        "descriptions": {
            "en": "For regular drivers: a monthly fee, a lower markup and no session fee.",
            "nl": "Voor wie vaak laadt: een maandbedrag, een lagere toeslag en geen sessiekosten.",
            "fr": "Pour les conducteurs réguliers : un abonnement, un supplément réduit, sans frais de session.",
        },
        "monthly_fee": Decimal("4.9900"),
        "markup_percent": Decimal("0"),
        "markup_per_kwh": Decimal("0.0200"),
        "session_fee": Decimal("0"),
        "session_fee_cap_per_month": None,
    },
    {
        "code": "business",
        "names": {"en": "Business", "nl": "Zakelijk", "fr": "Entreprise"},
        "descriptions": {
            "en": "For companies and fleets: a percentage markup, session fees capped per month.",
            "nl": "Voor bedrijven en vloten: een procentuele toeslag, sessiekosten begrensd per maand.",
            "fr": "Pour les entreprises et les flottes : un supplément en pourcentage, frais de "
            "session plafonnés par mois.",
        },
        "monthly_fee": Decimal("9.9900"),
        "markup_percent": Decimal("5.0000"),
        "markup_per_kwh": Decimal("0"),
        "session_fee": Decimal("0.2500"),
        "session_fee_cap_per_month": Decimal("10.0000"),
        "business_only": True,
    },
]


def billing_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BILLING_TIMEZONE", "Europe/Brussels"))


def seed_default_plans() -> list[Plan]:
    """Create the standard plans if their code does not exist yet (idempotent)."""
    created = []
    for spec in DEFAULT_PLANS:
        if current_version(spec["code"]) is None:
            plan = Plan(version=1, currency="EUR", **spec)
            db.session.add(plan)
            created.append(plan)
    db.session.flush()
    return created


def current_version(code: str) -> Plan | None:
    return db.session.scalar(select(Plan).where(Plan.code == code, Plan.superseded_at.is_(None)))


def current_plans() -> list[Plan]:
    return list(db.session.scalars(select(Plan).where(Plan.superseded_at.is_(None)).order_by(Plan.monthly_fee)))


def plans_open_to(account: Account) -> list[Plan]:
    return [plan for plan in current_plans() if plan.open_to_new and (not plan.business_only or account.is_business)]


def _validate_terms(terms: dict[str, object]) -> None:
    for name in ("monthly_fee", "markup_percent", "markup_per_kwh", "session_fee"):
        value = terms.get(name)
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise PlanError(f"{name} must be a non-negative decimal amount")
    cap = terms.get("session_fee_cap_per_month")
    if cap is not None and (not isinstance(cap, Decimal) or cap < 0):
        raise PlanError("session_fee_cap_per_month must be empty or a non-negative amount")
    markup_percent = terms.get("markup_percent", Decimal(0))
    assert isinstance(markup_percent, Decimal)  # the loop above refused anything else
    if markup_percent > Decimal(100):
        raise PlanError("markup_percent above 100 % is surely a typo")


def create_plan(
    code: str,
    names: dict[str, str],
    terms: dict[str, object],
    actor: Actor,
    *,
    open_to_new: bool = True,
    business_only: bool = False,
    descriptions: dict[str, str] | None = None,
) -> Plan:
    code = code.strip().lower()
    if not code or current_version(code) is not None:
        raise PlanError(f"a plan with code {code!r} already exists")
    _validate_terms(terms)
    plan = Plan(
        code=code,
        version=1,
        names=names,
        descriptions=descriptions or {},
        open_to_new=open_to_new,
        business_only=business_only,
        currency=str(terms.get("currency") or "EUR"),
        **{name: terms.get(name) for name in TERM_FIELDS if name != "currency"},
    )
    db.session.add(plan)
    db.session.flush()
    record("plan.create", "plan", plan.id, actor=actor, details={"code": code})
    return plan


def has_subscribers(plan: Plan) -> bool:
    return (
        db.session.execute(select(func.count(Subscription.id)).where(Subscription.plan_id == plan.id)).scalar_one() > 0
    )


def revise_plan(plan: Plan, changes: PlanChanges, actor: Actor, reason: str | None = None) -> Plan:
    """Change a plan. Without subscribers, in place; with subscribers (past or present), as a new version.

    Existing subscribers keep the version they signed up to (their invoices are computed from it); moving them
    to new terms is a separate, announced step.
    """
    if not plan.is_current:
        raise PlanError("only the current version of a plan can be revised")
    terms: dict[str, object] = {name: changes.get(name, getattr(plan, name)) for name in TERM_FIELDS}
    _validate_terms(terms)
    names = changes.get("names", plan.names)
    open_to_new = bool(changes.get("open_to_new", plan.open_to_new))
    if not has_subscribers(plan):
        for name, value in terms.items():
            setattr(plan, name, value)
        plan.names = dict(names)
        plan.open_to_new = open_to_new
        db.session.flush()
        record("plan.edit", "plan", plan.id, actor=actor, reason=reason, details={"in_place": True})
        return plan
    new_version = Plan(
        code=plan.code,
        version=plan.version + 1,
        names=dict(names),
        descriptions=dict(plan.descriptions or {}),
        open_to_new=open_to_new,
        business_only=plan.business_only,
        **terms,
    )
    db.session.add(new_version)
    plan.superseded_at = utcnow()
    plan.open_to_new = False
    db.session.flush()
    plan.superseded_by_id = new_version.id
    db.session.flush()
    record(
        "plan.new_version",
        "plan",
        new_version.id,
        actor=actor,
        reason=reason,
        details={"code": plan.code, "previous_version": plan.version, "version": new_version.version},
    )
    return new_version


# --- plan history ---------------------------------------------------------------------------------------------


def history(account_id: int) -> list[Subscription]:
    return list(
        db.session.scalars(
            select(Subscription).where(Subscription.account_id == account_id).order_by(Subscription.starts_at)
        )
    )


def plan_at(account_id: int, moment: dt.datetime) -> Plan | None:
    """The plan version whose terms applied to the account at ``moment``."""
    subscription = _stretch_at(account_id, moment)
    return subscription.plan if subscription else None


def session_fee_caps_at(account_ids: Iterable[int], moment: dt.datetime) -> dict[int, Decimal | None]:
    """The monthly session-fee cap of each account's plan at ``moment`` (None: no cap, or no plan), in one
    query: the invoice prints the cap of the month it covers."""
    ids = list(account_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(Subscription.account_id, Plan.session_fee_cap_per_month)
        .join(Plan, Plan.id == Subscription.plan_id)
        .where(
            Subscription.account_id.in_(ids),
            Subscription.starts_at <= moment,
            (Subscription.ends_at.is_(None)) | (Subscription.ends_at > moment),
        )
    )
    return {account_id: cap for account_id, cap in rows}


def _stretch_at(account_id: int, moment: dt.datetime) -> Subscription | None:
    return db.session.scalar(
        select(Subscription).where(
            Subscription.account_id == account_id,
            Subscription.starts_at <= moment,
            (Subscription.ends_at.is_(None)) | (Subscription.ends_at > moment),
        )
    )


def pending_change(account_id: int, now: dt.datetime | None = None) -> Subscription | None:
    now = now or utcnow()
    return db.session.scalar(
        select(Subscription).where(Subscription.account_id == account_id, Subscription.starts_at > now)
    )


def effective_day(subscription: Subscription) -> dt.date:
    """The calendar day (billing time zone) a stretch starts: what the plan page, the email and the back office
    print. A downgrade starts at local midnight of the 1st, which is still the last day of the month in UTC, so
    the UTC date would name the wrong day."""
    return subscription.starts_at.astimezone(billing_zone()).date()


def cancel_pending_change(account: Account, actor: Actor, *, now: dt.datetime | None = None) -> Subscription:
    """Drop the plan change scheduled for next month: the current plan stays, open-ended. Returns the current
    stretch; :class:`PlanError` when nothing is scheduled."""
    now = now or utcnow()
    if account.closed_at is not None:
        raise AccountClosedError(CLOSED_ACCOUNT_MESSAGE)
    scheduled = pending_change(account.id, now)
    current = _stretch_at(account.id, now)
    if scheduled is None or current is None:
        raise PlanError(_l("No plan change is scheduled."))
    dropped = scheduled.plan.code
    db.session.delete(scheduled)
    db.session.flush()  # the DELETE must reach the database before the open stretch is reopened
    current.ends_at = None
    db.session.flush()
    record(
        "plan.change_cancelled",
        "account",
        account.id,
        actor=actor,
        details={"plan": current.plan.code, "dropped": dropped},
    )
    return current


def start_of_next_month(moment: dt.datetime) -> dt.datetime:
    local = moment.astimezone(billing_zone())
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return dt.datetime(year, month, 1, tzinfo=billing_zone()).astimezone(dt.UTC)


def subscribe(account: Account, plan: Plan, actor: Actor, *, at: dt.datetime | None = None) -> Subscription:
    """First plan of a new account, in force from ``at`` (now)."""
    _check_plan_open(account, plan)
    if history(account.id):
        raise PlanError(_l("This account already has a plan; change it instead."))
    subscription = Subscription(account_id=account.id, plan=plan, starts_at=at or utcnow(), created_by=actor.label)
    db.session.add(subscription)
    db.session.flush()
    record("plan.subscribe", "account", account.id, actor=actor, details={"plan": plan.code, "version": plan.version})
    return subscription


def _check_plan_open(account: Account, plan: Plan) -> None:
    """May ``account`` start ``plan`` now? Every way to a plan (sign-up, a driver's or support's change) asks."""
    if account.closed_at is not None:
        raise AccountClosedError(CLOSED_ACCOUNT_MESSAGE)
    if not plan.is_current or not plan.open_to_new:
        raise PlanError(_l("This plan is not open to new subscribers."))
    if plan.business_only and not account.is_business:
        raise PlanError(_l("This plan is for business accounts."))


def change_plan(
    account: Account, plan: Plan, actor: Actor, *, now: dt.datetime | None = None, reason: str | None = None
) -> Subscription:
    """Switch plan: upgrades at once, downgrades at the start of next month. Returns the new stretch."""
    now = now or utcnow()
    _check_plan_open(account, plan)
    current = _stretch_at(account.id, now)
    if current is None:
        return subscribe(account, plan, actor, at=now)
    # A newer choice replaces a scheduled one.
    scheduled = pending_change(account.id, now)
    if scheduled is not None:
        db.session.delete(scheduled)
        db.session.flush()  # the DELETE must reach the database before the open stretch is reopened
        current.ends_at = None
        db.session.flush()
    if current.plan.code == plan.code and current.plan.id == plan.id:
        record("plan.change_cancelled", "account", account.id, actor=actor, details={"plan": plan.code})
        return current
    upgrade = plan.monthly_fee > current.plan.monthly_fee
    effective = now if upgrade else start_of_next_month(now)
    current.ends_at = effective
    db.session.flush()
    subscription = Subscription(account_id=account.id, plan=plan, starts_at=effective, created_by=actor.label)
    db.session.add(subscription)
    db.session.flush()
    record(
        "plan.change",
        "account",
        account.id,
        actor=actor,
        reason=reason,
        details={
            "from": current.plan.code,
            "to": plan.code,
            "effective": effective.isoformat(),
            "kind": "upgrade" if upgrade else "downgrade",
        },
    )
    return subscription


@dataclass(frozen=True)
class ProratedFee:
    plan: Plan
    days: int
    days_in_month: int
    amount: Decimal  # 4 decimals; billing rounds the invoice line to cents


def prorated_monthly_fees(account_id: int, year: int, month: int) -> list[ProratedFee]:
    """The month's subscription fee per plan version, prorated by day (see :func:`prorated_monthly_fees_many`)."""
    return prorated_monthly_fees_many([account_id], year, month).get(account_id, [])


def prorated_monthly_fees_many(account_ids: Iterable[int], year: int, month: int) -> dict[int, list[ProratedFee]]:
    """The month's subscription fees of many accounts at once: account id → fees (accounts without a paid plan
    in the month are absent).

    Each calendar day (billing time zone) is charged to the plan in force at the end of that day, so the day of
    an upgrade is billed at the new plan and a month never bills more than 100 % of any fee. Two queries for the
    whole batch (the stretches overlapping the month, then their plan versions), walked in Python: the invoice
    run calls this once per chunk of accounts instead of once per account.
    """
    ids = list(account_ids)
    if not ids:
        return {}
    zone = billing_zone()
    days_in_month = calendar.monthrange(year, month)[1]
    month_start = dt.datetime(year, month, 1, tzinfo=zone).astimezone(dt.UTC)
    month_end = (dt.datetime(year, month, 1, tzinfo=zone) + dt.timedelta(days=days_in_month)).astimezone(dt.UTC)
    # The last microsecond of each local day: the moment whose plan pays for that day.
    day_ends = [
        (dt.datetime(year, month, day, tzinfo=zone) + dt.timedelta(days=1) - dt.timedelta(microseconds=1)).astimezone(
            dt.UTC
        )
        for day in range(1, days_in_month + 1)
    ]
    stretches: dict[int, list[tuple[dt.datetime, dt.datetime | None, int]]] = {}
    for account_id, starts_at, ends_at, plan_id in db.session.execute(
        select(Subscription.account_id, Subscription.starts_at, Subscription.ends_at, Subscription.plan_id)
        .where(
            Subscription.account_id.in_(ids),
            Subscription.starts_at < month_end,
            (Subscription.ends_at.is_(None)) | (Subscription.ends_at > month_start),
        )
        .order_by(Subscription.account_id, Subscription.starts_at, Subscription.id)
    ):
        stretches.setdefault(account_id, []).append((starts_at, ends_at, plan_id))
    if not stretches:
        return {}
    plan_ids = {plan_id for rows in stretches.values() for _start, _end, plan_id in rows}
    plans = {plan.id: plan for plan in db.session.scalars(select(Plan).where(Plan.id.in_(plan_ids)))}
    fees: dict[int, list[ProratedFee]] = {}
    for account_id, rows in stretches.items():
        if len(rows) == 1 and rows[0][0] <= day_ends[0] and (rows[0][1] is None or rows[0][1] > day_ends[-1]):
            counts = {rows[0][2]: days_in_month}  # the common case: one plan the whole month
        else:
            counts = {}
            for end_of_day in day_ends:
                day_plan_id = next(
                    (
                        plan_id
                        for starts_at, ends_at, plan_id in rows
                        if starts_at <= end_of_day and (ends_at is None or ends_at > end_of_day)
                    ),
                    None,
                )
                if day_plan_id is not None:
                    counts[day_plan_id] = counts.get(day_plan_id, 0) + 1
        account_fees = [
            ProratedFee(
                plan=plans[plan_id],
                days=days,
                days_in_month=days_in_month,
                amount=quantize(plans[plan_id].monthly_fee * days / days_in_month, 4),
            )
            for plan_id, days in counts.items()
            if plans[plan_id].monthly_fee > 0
        ]
        if account_fees:
            fees[account_id] = account_fees
    return fees
