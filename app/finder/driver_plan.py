"""The plan a driver's prices are computed with, read as plain values.

An account's plan at the instant of the search; Pay-as-you-go for a visitor, and for an account without a plan
at that instant (as :func:`app.rating.estimates.estimate_for_connector` prices it). A plan version can be revised
in place while it has no subscribers (:func:`app.plans.services.revise_plan`), so its terms are read at every
search, never kept across searches: as one more row of the statement that reads the page's tariff versions
(:func:`plan_select`, used by :mod:`app.finder.tariff_versions`), or alone when a page names no tariff.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select

from app.accounts.models import Account
from app.plans.models import Plan, Subscription
from app.plans.services import DEFAULT_PLAN_CODE, TERM_FIELDS, current_version, plan_at
from app.pricing import PlanTerms


def plan_for(account: Account | None, at: dt.datetime) -> Plan | None:
    """The plan a driver's prices are computed with, as an ORM object (see the module)."""
    if account is not None:
        plan = plan_at(account.id, at)
        if plan is not None:
            return plan
    return current_version(DEFAULT_PLAN_CODE)


@dataclass(frozen=True, slots=True)
class DriverPlan:
    """The plan version a book prices with, as plain values: its code and terms (what a price depends on)."""

    code: str
    terms: PlanTerms


# The plan columns, in the order :func:`plan_from_row` reads them: the code, then the terms.
PLAN_COLUMNS: tuple[Any, ...] = (Plan.code, *(getattr(Plan, name) for name in TERM_FIELDS))


def _plan_id() -> ColumnElement[Any]:
    """The id of the plan to price with: the subscription's of ``plan_account`` at ``plan_at`` (a NULL account
    has none), else the current version of the default plan; as ``.first()`` read them before."""
    account_plan = (
        select(Subscription.plan_id)
        .where(
            Subscription.account_id == bindparam("plan_account", type_=Subscription.account_id.type),
            Subscription.starts_at <= bindparam("plan_at", type_=Subscription.starts_at.type),
            or_(
                Subscription.ends_at.is_(None),
                Subscription.ends_at > bindparam("plan_at", type_=Subscription.starts_at.type),
            ),
        )
        .limit(1)
        .scalar_subquery()
    )
    default_plan = (
        select(Plan.id)
        .where(Plan.code == bindparam("plan_code", type_=Plan.code.type), Plan.superseded_at.is_(None))
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(account_plan, default_plan)


def plan_select(*before: ColumnElement[Any]) -> Select[Any]:
    """The driver's plan as one row (none: no plan to price with): ``before`` columns (the padding of a UNION),
    then :data:`PLAN_COLUMNS`. Its parameters come from :func:`plan_params`."""
    return select(*before, *PLAN_COLUMNS).where(Plan.id == _plan_id())


def plan_params(account: Account | None, at: dt.datetime) -> dict[str, object]:
    return {"plan_account": None if account is None else account.id, "plan_at": at, "plan_code": DEFAULT_PLAN_CODE}


def plan_from_row(values: Sequence[Any]) -> DriverPlan:
    """A :class:`DriverPlan` from the values of :data:`PLAN_COLUMNS`."""
    return DriverPlan(values[0], PlanTerms(**dict(zip(TERM_FIELDS, values[1:], strict=True))))
