"""Finance back office: the monthly invoice runs (preview, approve, finalize, progress, retry) and the queue of
sessions the outlier guard held. Views translate HTTP into calls of ``app.billing`` services: the run's steps go
through ``runs.driver`` (the same path as ``flask billing``), which commits each; the hold decisions commit per
request. Every action needs the finance role and a CSRF token and is audited by the service it calls."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from app.accounts.models import Role
from app.audit.services import Actor, entries_for
from app.backoffice.access import staff_required
from app.billing.documents import delivery
from app.billing.invoicing.invoices import BillingError
from app.billing.models import HoldStatus, InvoiceRun, RunItem, RunStatus, SessionHold
from app.billing.runs import dispatch, driver, holds
from app.billing.runs import services as runs
from app.extensions import FlaskForm, db

bp = Blueprint("finance_runs", __name__, url_prefix="/backoffice/finance")


class PreviewForm(FlaskForm):
    period = StringField(
        _l("Month (YYYY-MM)"),
        validators=[DataRequired(), Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", message=_l("Give a month like 2026-10."))],
        render_kw={"placeholder": "2026-10"},
        default=runs.last_ended_month,  # a run may cover only a month that has ended
    )
    submit = SubmitField(_l("Compute preview"))


class RunStepForm(FlaskForm):
    reason = TextAreaField(_l("Reason (optional)"), validators=[Optional(), Length(max=1000)])


class HoldDecisionForm(FlaskForm):
    amount = StringField(_l("Amount incl. VAT"), validators=[Optional(), Length(max=20)])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=1000)])


def _actor() -> Actor:
    return Actor.of(current_user)


def _run_or_404(run_id: int) -> InvoiceRun:
    run = db.session.get(InvoiceRun, run_id)
    if run is None:
        abort(404)
    return run


def _runs_page(form: PreviewForm, status: int = 200) -> tuple[str, int]:
    found = db.session.scalars(
        select(InvoiceRun).order_by(InvoiceRun.period.desc(), InvoiceRun.id.desc()).limit(120)
    ).all()
    return render_template(
        "backoffice/finance/runs.html", runs=[(run, runs.progress(run)) for run in found], form=form
    ), status


@bp.get("/runs")
@staff_required(Role.FINANCE)
def run_list() -> ResponseReturnValue:
    return _runs_page(PreviewForm())


@bp.post("/runs")
@staff_required(Role.FINANCE)
def new_preview() -> ResponseReturnValue:
    form = PreviewForm()
    if not form.validate_on_submit():
        return _runs_page(form, 400)
    try:
        run = driver.preview(form.period.data, _actor())
    except BillingError as error:
        db.session.rollback()
        form.period.errors = [*form.period.errors, _(str(error))]
        return _runs_page(form, 400)
    flash(_("Preview of %(period)s computed.", period=run.period), "success")
    return redirect(url_for("finance_runs.run_detail", run_id=run.id))


@bp.get("/runs/<int:run_id>")
@staff_required(Role.FINANCE)
def run_detail(run_id: int) -> str:
    run = _run_or_404(run_id)
    failed = db.session.scalars(
        select(RunItem).where(RunItem.run_id == run.id, RunItem.status == "failed").order_by(RunItem.id).limit(200)
    ).all()
    checked = run.status in (RunStatus.FINALIZING, RunStatus.FINALIZED)
    uninvoiced = runs.uninvoiced_sessions(run.period) if checked else None
    unrated = (run.results or {}).get("unrated_cdrs") or []  # checked when the run completed
    held = db.session.scalar(select(func.count(SessionHold.id)).where(SessionHold.status == HoldStatus.HELD))
    to_deliver = delivery.undelivered_count(run.id) if run.status == RunStatus.FINALIZED else 0
    return render_template(
        "backoffice/finance/run.html",
        run=run,
        progress=runs.progress(run),
        failed=failed,
        to_deliver=to_deliver,
        uninvoiced=uninvoiced,
        unrated=unrated,
        held_now=held,
        form=RunStepForm(),
        audit=entries_for("billing_run", run.id, limit=20),
        eager=dispatch.is_eager(),
    )


def _step(run_id: int, step: Callable[[InvoiceRun, str], object], message: str) -> ResponseReturnValue:
    """Take one step of the run through ``runs.driver`` (which commits it); a refused step changes nothing."""
    run = _run_or_404(run_id)
    form = RunStepForm()
    if not form.validate_on_submit():
        flash(_("The form expired or the reason is too long; try again."), "error")
        return redirect(url_for("finance_runs.run_detail", run_id=run.id))
    try:
        step(run, form.reason.data)
    except BillingError as error:
        db.session.rollback()
        flash(_(str(error)), "error")
        return redirect(url_for("finance_runs.run_detail", run_id=run.id))
    flash(message, "success")
    return redirect(url_for("finance_runs.run_detail", run_id=run.id))


@bp.post("/runs/<int:run_id>/preview")
@staff_required(Role.FINANCE)
def refresh_preview(run_id: int) -> ResponseReturnValue:
    return _step(run_id, lambda run, _reason: driver.preview(run.period, _actor()), _("Preview refreshed."))


@bp.post("/runs/<int:run_id>/approve")
@staff_required(Role.FINANCE)
def approve(run_id: int) -> ResponseReturnValue:
    return _step(
        run_id,
        lambda run, reason: driver.approve(run, _actor(), reason),
        _("Run approved: the accounts to invoice are fixed."),
    )


@bp.post("/runs/<int:run_id>/finalize")
@staff_required(Role.FINANCE)
def finalize(run_id: int) -> ResponseReturnValue:
    # Finalized inline (no broker), the run is sent and collected at once, as `flask billing run` does. With
    # workers it finishes later and is not waited for: the run page shows the progress, then offers "Send
    # invoices and collect payments". A run with failed accounts stays open (the page offers a retry).
    return _step(
        run_id,
        lambda run, reason: driver.finalize(run, _actor(), reason),
        _("Finalizing started; progress is shown below."),
    )


@bp.post("/runs/<int:run_id>/deliver")
@staff_required(Role.FINANCE)
def deliver(run_id: int) -> ResponseReturnValue:
    """PDFs, emails and payment collection of the run's invoices not sent yet (each step is done once, so this
    also retries what failed)."""
    return _step(
        run_id, lambda run, reason: driver.deliver(run, _actor(), reason), _("Invoices are being sent and collected.")
    )


# --- held sessions -------------------------------------------------------------------------------------------


@bp.get("/holds")
@staff_required(Role.FINANCE)
def hold_queue() -> str:
    return render_template("backoffice/finance/holds.html", rows=holds.held_queue(), form=HoldDecisionForm())


@bp.post("/holds/<int:hold_id>/<any(release, adjust, write_off):action>")
@staff_required(Role.FINANCE)
def decide_hold(hold_id: int, action: str) -> ResponseReturnValue:
    hold = db.session.get(SessionHold, hold_id)
    if hold is None:
        abort(404)
    form = HoldDecisionForm()
    if not form.validate_on_submit():
        flash(_("Every decision on a held session needs a reason."), "error")
        return redirect(url_for("finance_runs.hold_queue"))
    operations: dict[str, tuple[Callable[[], object], str]] = {
        "release": (
            lambda: holds.release(hold, _actor(), form.reason.data),
            _("Session released: the next run bills it as rated."),
        ),
        "adjust": (
            lambda: holds.adjust(hold, _actor(), form.reason.data, form.amount.data or ""),
            _("Session adjusted: the next run bills the adjusted amount."),
        ),
        "write_off": (
            lambda: holds.write_off(hold, _actor(), form.reason.data),
            _("Session written off: it will not be billed."),
        ),
    }
    operation, message = operations[action]
    try:
        operation()
    except BillingError as error:
        db.session.rollback()
        flash(_(str(error)), "error")
        return redirect(url_for("finance_runs.hold_queue"))
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("finance_runs.hold_queue"))
