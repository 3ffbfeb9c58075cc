"""Dunning: what happens after an invoice could not be collected, until it is paid or the cards are blocked.

The schedule is ``DUNNING_SCHEDULE_DAYS`` (default ``[3, 7, 14]``): days after the first failed collection at
which the payment is tried again. Every failed retry emails a reminder; when the last one fails, the account's
cards are blocked (reason ``payment``, which queues the token updates for partners through the card service),
the invoice becomes UNCOLLECTIBLE and the driver gets an email saying so. Paying the open balance (portal
"pay now", a late SEPA success, a retry that works) lifts the payment blocks again once no other unpaid overdue
invoice is left.

:class:`~app.billing.models.Dunning` keeps where an invoice stands:

- ``stage`` = retries made so far (each failed retry sent one reminder);
- ``next_attempt_at`` = when the dunning batch (:mod:`app.billing.collection.dunning_runner`) retries next;
  ``None`` while an attempt is in flight (SEPA takes days; its webhook decides; a retry that met a Stripe outage
  waits for the resume job, :mod:`app.billing.collection.resume`), after success, and once the cards are blocked;
- ``cards_blocked_at`` = when the schedule ran out.

This module is the policy, called by collection (:mod:`app.billing.collection.attempts`) after each attempt;
the batch that retries due invoices calls collection, so it lives apart in ``dunning_runner``. Services flush,
never commit; the runner commits one invoice at a time (with ``commit=True``) and sends the emails after each
commit. Stripe calls made before a commit carry an idempotency key of invoice number + attempt, so a crash
between the call and the commit never charges twice.

"Unpaid overdue" (:func:`has_unpaid_overdue`), used for real-time authorization and for lifting blocks: a
finalized invoice that is UNCOLLECTIBLE, or OPEN/FAILED past its due date. A SEPA debit under way (PROCESSING)
is not overdue: the driver did everything they could.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app
from sqlalchemy import ColumnElement, and_, exists, or_, select

from app.accounts.models import Account
from app.accounts.notices import notice_addresses
from app.accounts.services import PendingEmail
from app.audit.services import Actor, record
from app.billing.models import Dunning, Invoice, InvoiceKind, InvoiceStatus, PaymentState
from app.cards.models import BlockReason
from app.cards.services import block_all_cards, unblock_all_cards
from app.db import utcnow
from app.extensions import db
from app.i18n import N_
from app.public_urls import portal_url
from app.roaming.send.authorization import STANDING_CHECKS, Standing, StandingCheck

DEFAULT_SCHEDULE_DAYS = (3, 7, 14)
DUNNING_ACTOR = "dunning"
BILLING_ACTOR = "billing"

# States in which an invoice still waits for money from the driver.
UNPAID_STATES = (PaymentState.OPEN, PaymentState.FAILED, PaymentState.UNCOLLECTIBLE)


def schedule_days() -> list[int]:
    days = [int(day) for day in current_app.config.get("DUNNING_SCHEDULE_DAYS") or DEFAULT_SCHEDULE_DAYS]
    if not days or days != sorted(days) or days[0] <= 0:
        raise ValueError("DUNNING_SCHEDULE_DAYS must be increasing positive day counts, e.g. [3, 7, 14]")
    return days


def _gap_after(stage: int) -> dt.timedelta:
    """Time from the failure of retry ``stage`` (0 = the first collection) to the next retry."""
    days = schedule_days()
    previous = days[stage - 1] if stage > 0 else 0
    return dt.timedelta(days=days[stage] - previous)


# --- standing: what real-time authorization asks ------------------------------------------------------------


def _unpaid_overdue_clause(today: dt.date):  # type: ignore[no-untyped-def]
    return and_(
        Invoice.kind == InvoiceKind.INVOICE,
        Invoice.status == InvoiceStatus.FINALIZED,
        or_(
            Invoice.payment_state == PaymentState.UNCOLLECTIBLE,
            and_(Invoice.payment_state.in_([PaymentState.OPEN, PaymentState.FAILED]), Invoice.due_date < today),
        ),
    )


def has_unpaid_overdue(account_id: int, today: dt.date | None = None) -> bool:
    """One indexed query (``ix_billing_invoices_account``); authorization asks the same through
    :func:`unpaid_overdue_condition`."""
    today = today or utcnow().date()
    found = db.session.scalar(
        select(Invoice.id).where(Invoice.account_id == account_id, _unpaid_overdue_clause(today)).limit(1)
    )
    return found is not None


def unpaid_overdue_condition(account_id: ColumnElement[int]) -> ColumnElement[bool]:
    """``EXISTS`` an unpaid overdue invoice of the account: the SQL form of :func:`has_unpaid_overdue` that
    real-time authorization asks in the same query as the card."""
    return exists(select(Invoice.id).where(Invoice.account_id == account_id, _unpaid_overdue_clause(utcnow().date())))


# Plugged into :data:`app.roaming.send.authorization.STANDING_CHECKS`: NO_CREDIT while an invoice is unpaid and overdue.
UNPAID_OVERDUE_CHECK = StandingCheck("unpaid overdue invoice", Standing.NO_CREDIT, unpaid_overdue_condition)


def register_standing_check() -> None:
    """Called by ``app.billing.init_app``: every process built by ``create_app`` (web, worker, CLI) has it."""
    if UNPAID_OVERDUE_CHECK not in STANDING_CHECKS:
        STANDING_CHECKS.append(UNPAID_OVERDUE_CHECK)


# --- emails -------------------------------------------------------------------------------------------------


def balance_url() -> str:
    """Absolute link to the portal balance page for emails, on the configured base URL (in a worker too)."""
    return portal_url("billing_pay.balance")


def billing_emails(account_id: int, template: str, subject: str, **context: object) -> list[PendingEmail]:
    """One email per address of the account's notices (``accounts.notices``: its confirmed notification address,
    else its active driver logins), in the account's language (sent after commit)."""
    account = db.session.get(Account, account_id)
    if account is None or account.anonymised_at is not None:
        return []
    recipients = notice_addresses(account_id)
    context = {"name": account.full_name, "balance_url": balance_url(), **context}
    return [
        PendingEmail(to=email, template=template, language=account.language, subject=subject, context=dict(context))
        for email in recipients
    ]


def invoice_context(invoice: Invoice, amount_minor: int | None = None) -> dict[str, object]:
    return {
        "invoice_number": invoice.number,
        "amount_minor": invoice.total_minor if amount_minor is None else amount_minor,
        "currency": invoice.currency,
        "due_date": invoice.due_date,
    }


# --- transitions --------------------------------------------------------------------------------------------


def on_payment_failure(
    invoice: Invoice, now: dt.datetime, *, amount_minor: int, message: str | None, notify: bool = True
) -> list[PendingEmail]:
    """An attempt to collect ``invoice`` failed (synchronously, or later through a webhook).

    - no dunning yet: the schedule starts (first retry after ``DUNNING_SCHEDULE_DAYS[0]`` days), email
      ``payment_failed``;
    - a retry was in flight (``next_attempt_at`` is None): schedule the next one with a ``payment_reminder``,
      or, when that was the last retry, block the cards (:func:`_exhaust`);
    - a retry is already scheduled (e.g. a failed "pay now"): the schedule stays as it is.
    """
    if invoice.payment_state == PaymentState.UNCOLLECTIBLE:
        return []  # cards already blocked; a failed "pay now" changes nothing
    invoice.payment_state = PaymentState.FAILED
    dunning = db.session.get(Dunning, invoice.id)
    context = {**invoice_context(invoice, amount_minor), "reason": message}
    if dunning is None:
        dunning = Dunning(invoice_id=invoice.id, stage=0, next_attempt_at=now + _gap_after(0))
        db.session.add(dunning)
        db.session.flush()
        if not notify:
            return []
        return billing_emails(
            invoice.account_id,
            "payment_failed",
            N_("Your payment did not go through"),
            next_attempt_at=dunning.next_attempt_at,
            **context,
        )
    if dunning.next_attempt_at is not None or dunning.cards_blocked_at is not None:
        db.session.flush()
        return []
    if dunning.stage >= len(schedule_days()):
        return _exhaust(invoice, dunning, now, context)
    dunning.next_attempt_at = now + _gap_after(dunning.stage)
    db.session.flush()
    return billing_emails(
        invoice.account_id,
        "payment_reminder",
        N_("Reminder: your invoice is still unpaid"),
        next_attempt_at=dunning.next_attempt_at,
        stage=dunning.stage,
        retries=len(schedule_days()),
        **context,
    )


def _exhaust(invoice: Invoice, dunning: Dunning, now: dt.datetime, context: dict[str, object]) -> list[PendingEmail]:
    """The last retry failed: block every card of the account (audited, token updates queued) until paid."""
    actor = Actor.system(DUNNING_ACTOR)
    invoice.payment_state = PaymentState.UNCOLLECTIBLE
    dunning.next_attempt_at = None
    dunning.cards_blocked_at = now
    blocked = block_all_cards(
        invoice.account_id,
        BlockReason.PAYMENT,
        actor,
        note=f"invoice {invoice.number} unpaid after {dunning.stage} retries",
    )
    record(
        "invoice.uncollectible",
        "invoice",
        invoice.id,
        actor=actor,
        reason="dunning schedule exhausted",
        details={
            "number": invoice.number,
            "account_id": invoice.account_id,
            "cards_blocked": [card.id for card in blocked],
        },
    )
    db.session.flush()
    return billing_emails(
        invoice.account_id,
        "cards_blocked_unpaid",
        N_("Your charge cards are blocked"),
        cards_blocked=len(blocked),
        **context,
    )


def on_payment_success(invoice: Invoice, now: dt.datetime, *, amount_minor: int) -> list[PendingEmail]:
    """The invoice is paid: stop dunning, lift payment blocks if nothing else is overdue, email a receipt."""
    was_paid = invoice.payment_state == PaymentState.PAID
    invoice.payment_state = PaymentState.PAID
    invoice.paid_at = invoice.paid_at or now
    stop_dunning(invoice)
    lift_payment_blocks(invoice.account_id, now.date())
    if was_paid:
        return []
    return billing_emails(
        invoice.account_id,
        "payment_received",
        N_("We received your payment"),
        paid_at=invoice.paid_at,
        **invoice_context(invoice, amount_minor),
    )


def stop_dunning(invoice: Invoice) -> None:
    dunning = db.session.get(Dunning, invoice.id)
    if dunning is not None:
        dunning.next_attempt_at = None
    db.session.flush()


def lift_payment_blocks(account_id: int, today: dt.date | None = None) -> int:
    """Unblock the cards blocked for payment once no unpaid overdue invoice is left; returns how many."""
    db.session.flush()
    if has_unpaid_overdue(account_id, today):
        return 0
    lifted = unblock_all_cards(account_id, BlockReason.PAYMENT, Actor.system(BILLING_ACTOR), note="open balance paid")
    return len(lifted)
