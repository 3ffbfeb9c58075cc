"""Finance decides on sessions the outlier guard held: release (bill as rated), adjust (bill a corrected price
incl. VAT) or write off (never bill). Every decision names who and why and lands in the audit log.

The decision only changes the hold row; the next run's composition reads it (``composition.compose``): a
released session is billed as rated, an adjusted one at the adjusted price (same VAT rate), a written-off one
not at all. A session already on an invoice cannot be decided any more.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Row, select

from app.audit.services import Actor, record
from app.billing.invoicing.invoices import BillingError
from app.billing.models import HoldStatus, InvoiceLine, SessionHold
from app.charging.models import Cdr
from app.db import utcnow
from app.extensions import db
from app.rating.models import SessionCharge

MAX_REASON = 1000


class HoldError(BillingError):
    pass


def held_queue(limit: int = 500) -> list[Row[SessionHold, SessionCharge, Cdr]]:
    """Holds waiting for a decision, oldest session first, with the session they hold."""
    return list(
        db.session.execute(
            select(SessionHold, SessionCharge, Cdr)
            .join(SessionCharge, SessionCharge.id == SessionHold.session_charge_id)
            .join(Cdr, Cdr.id == SessionCharge.cdr_id)
            .where(SessionHold.status == HoldStatus.HELD)
            .order_by(Cdr.start_date_time, SessionHold.id)
            .limit(limit)
        ).all()
    )


def _check(hold: SessionHold, reason: str) -> str:
    if hold.status != HoldStatus.HELD:
        raise HoldError(_l("This session was already decided."))
    invoiced = db.session.scalar(select(InvoiceLine.id).where(InvoiceLine.session_charge_id == hold.session_charge_id))
    if invoiced is not None:
        raise HoldError(_l("This session is already on an invoice."))
    reason = (reason or "").strip()
    if not reason:
        raise HoldError(_l("A decision on a held session needs a reason."))
    if len(reason) > MAX_REASON:
        raise HoldError(_l("The reason is longer than %(count)s characters.", count=MAX_REASON))
    return reason


def _decide(
    hold: SessionHold, status: HoldStatus, actor: Actor, reason: str, action: str, details: dict[str, Any]
) -> SessionHold:
    hold.status = status
    hold.decided_by = actor.label
    hold.decision_reason = reason
    hold.decided_at = utcnow()
    db.session.flush()
    record(
        action,
        "session_hold",
        hold.id,
        actor=actor,
        reason=reason,
        details={"session_charge_id": hold.session_charge_id, "held_for": hold.reasons, **details},
    )
    return hold


def release(hold: SessionHold, actor: Actor, reason: str) -> SessionHold:
    """Bill the session as rated on the next run."""
    reason = _check(hold, reason)
    return _decide(hold, HoldStatus.RELEASED, actor, reason, "billing.hold.release", {})


def parse_amount(value: str | Decimal) -> Decimal:
    """An amount typed by finance (``12.50`` or ``12,50``): finite, not negative, at most 2 decimals."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError) as error:
        raise HoldError(_l("Not an amount: %(value)r.", value=value)) from error
    if not amount.is_finite():
        raise HoldError(_l("Not an amount: %(value)r.", value=value))
    if amount < 0:
        raise HoldError(_l("The amount cannot be negative."))
    if amount != amount.quantize(Decimal("0.01")):
        raise HoldError(_l("The amount has at most 2 decimals."))
    return amount


def adjust(hold: SessionHold, actor: Actor, reason: str, adjusted_incl_vat: str | Decimal) -> SessionHold:
    """Bill the session at ``adjusted_incl_vat`` (incl. VAT, at the session's VAT rate) on the next run."""
    reason = _check(hold, reason)
    amount = parse_amount(adjusted_incl_vat)
    charge = db.session.get_one(SessionCharge, hold.session_charge_id)  # a hold always has its charge (FK)
    hold.adjusted_incl_vat = amount
    return _decide(
        hold,
        HoldStatus.ADJUSTED,
        actor,
        reason,
        "billing.hold.adjust",
        {"rated_incl_vat": str(charge.driver_incl_vat), "adjusted_incl_vat": str(amount)},
    )


def write_off(hold: SessionHold, actor: Actor, reason: str) -> SessionHold:
    """Never bill the session (we still owe the CPO: it stays in the margin report as cost)."""
    reason = _check(hold, reason)
    return _decide(hold, HoldStatus.WRITTEN_OFF, actor, reason, "billing.hold.write_off", {})
