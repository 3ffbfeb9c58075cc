"""Finance back office: invoice search, the invoice page with its credit notes, issuing a credit note (audited
with a reason by ``invoices.credit_invoice``), the PDF, and the read-only list of failed payments with their
dunning state (the payments module owns that logic). The search and the lists come from ``app.billing.lookups``,
what "Finish delivery" has left to do from ``app.billing.documents.delivery``."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import BooleanField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.accounts.models import Role
from app.audit.services import Actor, entries_for
from app.backoffice.access import staff_required
from app.billing import lookups
from app.billing.collection.services import COLLECTABLE_STATES, amount_due_minor
from app.billing.documents.delivery import delivery_unfinished
from app.billing.documents.downloads import (
    PdfUnavailableError,
    invoice_pdf,
    invoice_ubl,
    offers_ubl,
    rerender_pdf,
)
from app.billing.invoicing import invoices
from app.billing.invoicing.invoices import BillingError
from app.billing.models import Dunning, Invoice, InvoiceKind, InvoiceStatus, Payment, PaymentState
from app.billing.runs import dispatch
from app.billing.runs.holds import HoldError, parse_amount
from app.extensions import FlaskForm, db
from app.money import to_minor_units

log = logging.getLogger(__name__)

bp = Blueprint("finance_invoices", __name__, url_prefix="/backoffice/finance")


# What the customer reads on the credit note, by code (``snapshot.CREDIT_REASONS``; the PDF translates the same
# texts from its own catalogue). Finance's ``reason`` stays internal: the audit log only.
CUSTOMER_REASON_CHOICES = [
    ("invoice_correction", _l("Correction of your invoice")),
    ("billing_error", _l("Correction of a billing error")),
    ("session_price", _l("Correction of the price of a charging session")),
    ("not_your_session", _l("A charging session that was not yours")),
    ("subscription", _l("Correction of your subscription fee")),
    ("charged_twice", _l("Amount charged twice")),
    ("goodwill", _l("Goodwill gesture")),
    ("contract_ended", _l("Refund after the end of your contract")),
]


class CreditNoteForm(FlaskForm):
    scope = RadioField(
        _l("Credit"),
        choices=[("full", _l("The whole invoice")), ("amount", _l("An amount"))],
        default="full",
        validators=[DataRequired()],
    )
    amount = StringField(_l("Amount excl. VAT"), validators=[Optional(), Length(max=20)])
    # Chosen explicitly (no silent default): the empty first choice fails DataRequired.
    customer_reason = SelectField(
        _l("Reason shown to the customer"),
        choices=[("", _l("Choose the reason the customer reads")), *CUSTOMER_REASON_CHOICES],
        validators=[DataRequired()],
    )
    reason = TextAreaField(_l("Internal note"), validators=[DataRequired(), Length(max=1000)])
    # A credit note is numbered and sent (and may refund money): it cannot be withdrawn.
    confirm = BooleanField(
        _l("I understand that a credit note cannot be withdrawn."),
        validators=[DataRequired(_l("Tick “I understand” to confirm: this step cannot be undone."))],
    )


@bp.get("/invoices")
@staff_required(Role.FINANCE)
def invoice_search() -> str:
    fields = ("number", "customer", "name", "email", "period", "state", "reference")
    filters = lookups.InvoiceSearch(**{key: (request.args.get(key) or "").strip() for key in fields})
    # A first visit shows the latest invoiced month instead of an empty page.
    latest = None if filters.given else lookups.latest_period()
    if latest is not None:
        filters = lookups.InvoiceSearch(period=latest)
    try:
        found = lookups.search_invoices(filters)
    except BillingError:
        abort(400)
    return render_template(
        "backoffice/finance/invoices.html",
        rows=found.rows,
        more=found.more,
        filters=filters,
        searched=filters.given,
        latest=latest,
        states=[state.value for state in PaymentState],
    )


def _invoice_or_404(number: str) -> Invoice:
    invoice = invoices.invoice_by_number(number)
    if invoice is None or invoice.status != InvoiceStatus.FINALIZED:
        abort(404)
    return invoice


def _detail(invoice: Invoice, form: CreditNoteForm, status: int = 200) -> tuple[str, int]:
    notes = db.session.scalars(
        select(Invoice).where(Invoice.credits_invoice_id == invoice.id).order_by(Invoice.id)
    ).all()
    credited = db.session.get(Invoice, invoice.credits_invoice_id) if invoice.credits_invoice_id else None
    payments = db.session.scalars(
        select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.created_at, Payment.id)
    ).all()
    # What is left after credit notes and partial payments, while the invoice waits for money.
    unpaid = invoice.kind == InvoiceKind.INVOICE and invoice.payment_state in (
        *COLLECTABLE_STATES,
        PaymentState.PROCESSING,
    )
    return render_template(
        "backoffice/finance/invoice.html",
        invoice=invoice,
        snapshot=invoice.snapshot or {},
        notes=notes,
        credited=credited,
        payments=payments,
        dunning=db.session.get(Dunning, invoice.id),
        form=form,
        can_credit=invoice.kind == InvoiceKind.INVOICE,
        audit=entries_for("invoice", invoice.id, limit=20),
        delivery_unfinished=delivery_unfinished(invoice, payments, credited),
        has_ubl=offers_ubl(invoice),
        amount_due=amount_due_minor(invoice) if unpaid else None,
    ), status


@bp.get("/invoices/<number>")
@staff_required(Role.FINANCE)
def invoice_detail(number: str) -> tuple[str, int]:
    return _detail(_invoice_or_404(number), CreditNoteForm())


@bp.post("/invoices/<number>/credit")
@staff_required(Role.FINANCE)
def credit(number: str) -> ResponseReturnValue:
    invoice = _invoice_or_404(number)
    form = CreditNoteForm()
    if not form.validate_on_submit():
        return _detail(invoice, form, 400)
    try:
        amount_minor = None
        if form.scope.data == "amount":
            amount_minor = to_minor_units(parse_amount(form.amount.data or ""), invoice.currency)
            if amount_minor <= 0:
                raise BillingError("the credited amount must be positive")
        note = invoices.credit_invoice(
            invoice,
            Actor.of(current_user),
            form.reason.data,
            amount_minor,
            customer_reason=form.customer_reason.data,
        )
    except (BillingError, HoldError) as error:
        db.session.rollback()
        field = form.amount if form.scope.data == "amount" else form.reason
        field.errors = [*field.errors, str(error)]
        return _detail(invoice, form, 400)
    db.session.commit()
    flash(_("Credit note %(number)s issued.", number=note.number), "success")
    # The driver gets the credit note, and the money back when the invoice was paid (a refund through Stripe).
    # The note is committed whatever happens now: a failure here must not make finance issue it twice.
    try:
        dispatch.dispatch_delivery([note.id])
    except Exception:
        db.session.rollback()
        log.exception("delivery of credit note %s failed", note.number)
        flash(_("Sending it (and any refund) did not complete: use “Finish delivery” on its page."), "error")
    return redirect(url_for("finance_invoices.invoice_detail", number=note.number))


@bp.post("/invoices/<number>/deliver")
@staff_required(Role.FINANCE)
def deliver(number: str) -> ResponseReturnValue:
    """Finish what delivery has not done yet: documents, email, and the payment (an invoice) or the refund (a
    credit note whose invoice was still being paid). Each step happens once, so this never repeats one."""
    invoice = _invoice_or_404(number)
    if not FlaskForm().validate_on_submit():
        abort(400)
    dispatch.prepare_invoice_delivery(invoice, Actor.of(current_user))
    db.session.commit()
    dispatch.dispatch_delivery([invoice.id])
    flash(_("Delivery of %(number)s done or queued.", number=invoice.number), "success")
    return redirect(url_for("finance_invoices.invoice_detail", number=invoice.number))


@bp.get("/invoices/<number>.ubl.xml")
@staff_required(Role.FINANCE)
def invoice_ubl_download(number: str) -> Response:
    invoice = _invoice_or_404(number)
    data = invoice_ubl(invoice)
    if data is None:
        abort(404)
    return Response(
        data,
        mimetype="application/xml",
        headers={"Content-Disposition": f'attachment; filename="{invoice.number}.ubl.xml"'},
    )


class RerenderForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=1000)])


@bp.post("/invoices/<number>/rerender")
@staff_required(Role.FINANCE)
def rerender(number: str) -> ResponseReturnValue:
    """Render the stored PDF again from the frozen snapshot (a template or font fix): explicit, with a reason."""
    invoice = _invoice_or_404(number)
    form = RerenderForm()
    if not form.validate_on_submit():
        flash(_("Re-rendering the PDF needs a reason."), "error")
        return redirect(url_for("finance_invoices.invoice_detail", number=invoice.number))
    try:
        rerender_pdf(invoice, Actor.of(current_user), form.reason.data)
    except BillingError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("finance_invoices.invoice_detail", number=invoice.number))
    db.session.commit()
    flash(_("The PDF of %(number)s was rendered again from its frozen data.", number=invoice.number), "success")
    return redirect(url_for("finance_invoices.invoice_detail", number=invoice.number))


@bp.get("/invoices/<number>.pdf")
@staff_required(Role.FINANCE)
def invoice_pdf_download(number: str) -> Response:
    invoice = _invoice_or_404(number)
    try:
        data = invoice_pdf(invoice)
    except PdfUnavailableError as error:
        db.session.rollback()
        abort(404, description=str(error))
    db.session.commit()
    return Response(
        data, mimetype="application/pdf", headers={"Content-Disposition": f'inline; filename="{invoice.number}.pdf"'}
    )


@bp.get("/payments")
@staff_required(Role.FINANCE)
def failed_payments() -> str:
    return render_template(
        "backoffice/finance/payments.html",
        rows=lookups.failed_payments(),
        to_review=lookups.payments_to_review(),
        ignored=lookups.ignored_stripe_events(),
    )
