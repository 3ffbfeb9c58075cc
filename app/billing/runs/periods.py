"""Which month a run may cover: the period's form (``YYYY-MM``) and the rule that the month has ended in the
seller's time zone (``BILLING_TIMEZONE``)."""

from __future__ import annotations

import datetime as dt
import re

from flask_babel import lazy_gettext as _l

from app.billing.invoicing.composition import period_bounds
from app.billing.invoicing.invoices import BillingError
from app.db import utcnow
from app.plans.services import billing_zone

# A month of this century: year 0000 or 9999 would overflow the date arithmetic of its bounds (a 500 before),
# and no e-MSP bills sessions outside it.
PERIOD = re.compile(r"^20\d{2}-(0[1-9]|1[0-2])$")


def check_period(period: str) -> str:
    if not PERIOD.match(period or ""):
        raise BillingError(_l("The month must look like 2026-10, not %(period)r.", period=period))
    return period


def check_month_ended(period: str, now: dt.datetime | None = None) -> str:
    """A run may cover only a month that has ended in the seller's time zone (``BILLING_TIMEZONE``).

    A month still running would invoice only part of its sessions, under a due date that can fall before the
    period ends; a future month would bill sessions of this month under the next one's number. Checked at every
    step (preview, approve, finalize), so a preview stored before this rule cannot be finalized either."""
    check_period(period)
    _start, end = period_bounds(period)
    if (now or utcnow()) < end:
        first_day = end.astimezone(billing_zone()).date().isoformat()
        raise BillingError(
            _l(
                "%(period)s has not ended yet: a run may cover only a month that has ended (from %(day)s on).",
                period=period,
                day=first_day,
            )
        )
    return period


def last_ended_month(now: dt.datetime | None = None) -> str:
    """The latest month a run may cover: the one before the current month in the seller's time zone."""
    local = (now or utcnow()).astimezone(billing_zone())
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{month:02d}"
