"""After finalization: render the invoice documents, email them, and collect payment (for a credit note: refund
it) — each step once.

Every step records that it is done (``pdf``, ``emailed_at``, the ``Payment`` of attempt 1), so delivering an
invoice twice (a retried task, a rerun) repeats nothing. Email is at-least-once: it is marked sent after the
SMTP server took it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import current_app
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import OperationalError

from app.accounts.notices import notice_addresses
from app.billing.collection.dunning import balance_url
from app.billing.documents.downloads import invoice_pdf, invoice_ubl
from app.billing.models import Invoice, InvoiceKind, InvoiceStatus, Payment, PaymentState
from app.db import utcnow
from app.extensions import db
from app.i18n import N_
from app.mail import send_template
from app.payments.services import active_payment_method


def _documents(invoice: Invoice) -> list[tuple[str, bytes, str]]:
    """The stored PDF (Factur-X for business buyers, rendered and stored on first use) and, for Belgian business
    buyers, the Peppol UBL: what the portal and the back office also offer for download."""
    files = [(f"{invoice.number}.pdf", invoice_pdf(invoice), "application/pdf")]
    ubl = invoice_ubl(invoice)
    if ubl is not None:
        files.append((f"{invoice.number}.ubl.xml", ubl, "application/xml"))
    return files


def deliver_invoice(invoice_id: int) -> dict[str, str]:
    """Render, email and collect one finalized invoice (commits after each step: it is its own batch unit)."""
    from app.accounts.services import send_pending
    from app.billing.collection.services import collect_invoice

    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.status != InvoiceStatus.FINALIZED:
        return {"invoice": str(invoice_id), "status": "skipped"}
    # Finalizing numbered the invoice and froze its snapshot.
    assert invoice.number is not None and invoice.snapshot is not None
    attachments = _documents(invoice)
    db.session.commit()
    done = {"invoice": invoice.number, "documents": ",".join(name for name, _, _ in attachments)}
    if invoice.emailed_at is None and _claim_email(invoice.id):
        recipients = notice_addresses(invoice.account_id)  # the notification address, else the driver logins
        subject = N_("Your credit note") if invoice.kind == InvoiceKind.CREDIT_NOTE else N_("Your invoice")
        # Say what is true for this driver: we collect with a usable saved method, else they pay by hand.
        method = active_payment_method(invoice.account_id)
        collected = method is not None and method.is_usable(utcnow().date())
        for address in recipients:
            send_template(
                address,
                "invoice",
                invoice.snapshot.get("language", "en"),
                subject,
                attachments=attachments,
                number=invoice.number,
                period=invoice.period,
                total=invoice.total_minor,
                currency=invoice.currency,
                due_date=invoice.due_date,
                collected_automatically=collected,
                pay_url=balance_url(),
                iban=current_app.config["SELLER"]["iban"],
                # The structured reference the invoice prints (the number on invoices frozen before it existed).
                reference=(invoice.snapshot.get("payment") or {}).get("reference") or invoice.number,
                credit_note=invoice.kind == InvoiceKind.CREDIT_NOTE,
                credit_reason=invoice.snapshot.get("credit_reason"),
            )
        db.session.commit()  # the claim (emailed_at) becomes final with the email sent
        done["email"] = str(len(recipients))
    already_collected = db.session.scalar(select(Payment.id).where(Payment.invoice_id == invoice.id).limit(1))
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        if already_collected is None:
            done["refund"] = refund_due(invoice)
    elif invoice.payment_state == PaymentState.OPEN and already_collected is None:
        result = collect_invoice(invoice, attempt=1)
        db.session.commit()
        send_pending(result.emails)
        done["payment"] = result.outcome.value
    return done


def _claim_email(invoice_id: int) -> bool:
    """Mark the invoice emailed *before* sending, in the transaction that commits after the send: two
    deliveries of the same invoice at once (a second click on "send", a redelivered task) send one email. The
    UPDATE holds the row (PostgreSQL) or the database's write lock (SQLite) until that commit, so the other
    delivery waits and then updates no row; if sending fails, the rollback un-marks it for the next try."""
    try:
        claimed = db.session.execute(
            update(Invoice)
            .where(Invoice.id == invoice_id, Invoice.emailed_at.is_(None))
            .values(emailed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    except OperationalError as error:
        # SQLite refuses the write at once when another connection is writing (no queueing for a transaction
        # that already read): leave the email to that delivery, or to the next one if it was something else.
        if db.session.get_bind().dialect.name != "sqlite" or "locked" not in str(error):
            raise
        db.session.rollback()
        return False
    # Session.execute types every result as Result; an UPDATE's is a CursorResult, which has the rowcount.
    assert isinstance(claimed, CursorResult)
    return claimed.rowcount == 1


def refund_due(credit_note: Invoice) -> str:
    """A credit note goes back through Stripe when its invoice was paid, or lowers what is still to be collected
    (``refunds.refund_credit_note``; its refund Payment makes a second delivery a no-op). When the invoice's SEPA
    payment is still under way the outcome is ``pending``: the webhook of that payment's success calls this
    again (``billing.webhooks``), and finance can also press "Finish delivery". Commits."""
    from app.accounts.services import send_pending
    from app.billing.collection.refunds import refund_credit_note
    from app.billing.collection.services import CollectionError

    try:
        result = refund_credit_note(credit_note)
    except CollectionError as error:
        db.session.rollback()
        return f"error: {error}"
    db.session.commit()
    send_pending(result.emails)
    return result.outcome


def _undelivered(run_id: int) -> Any:
    """Finalized invoices of the run with a step left: no PDF, no email, or still to be collected with no
    attempt made (Stripe was unreachable when it was tried)."""
    attempted = select(Payment.id).where(Payment.invoice_id == Invoice.id).exists()
    return (
        (Invoice.run_id == run_id)
        & (Invoice.status == InvoiceStatus.FINALIZED)
        & (
            Invoice.emailed_at.is_(None)
            | Invoice.pdf.is_(None)
            | ((Invoice.payment_state == PaymentState.OPEN) & ~attempted)
        )
    )


def invoices_to_deliver(run_id: int) -> list[int]:
    return list(db.session.scalars(select(Invoice.id).where(_undelivered(run_id)).order_by(Invoice.id)))


def undelivered_count(run_id: int) -> int:
    return db.session.scalar(select(func.count(Invoice.id)).where(_undelivered(run_id))) or 0


def delivery_unfinished(invoice: Invoice, payments: Sequence[Payment], credited: Invoice | None) -> bool:
    """Whether "Finish delivery" has something left to do for one invoice (its ``payments`` and, for a credit
    note, the ``credited`` invoice already loaded): documents or email, an invoice still to collect with no
    attempt (as :func:`_undelivered` says for a run), or a credit note whose paid invoice has not been refunded
    yet."""
    if invoice.emailed_at is None or invoice.pdf_rendered_at is None:
        return True
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        return not payments and credited is not None and credited.payment_state == PaymentState.PAID
    return invoice.payment_state == PaymentState.OPEN and not payments
