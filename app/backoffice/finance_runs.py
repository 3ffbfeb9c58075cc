"""Finance back office: the monthly invoice runs (preview, approve, finalize, progress, retry) and the queue of
sessions the outlier guard held. Views translate HTTP into calls of ``app.billing`` services: the run's steps go
through ``runs.driver`` (the same path as ``flask billing``), which commits each; the hold decisions commit per
request. Every action needs the finance role and a CSRF token and is audited by the service it calls."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select
from wtforms import BooleanField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from app.accounts.models import Account, Role
from app.audit.services import Actor, entries_for
from app.backoffice.access import staff_required
from app.billing.collection.outages import waiting_for_provider
from app.billing.documents import delivery
from app.billing.invoicing.invoices import BillingError
from app.billing.models import HoldStatus, InvoiceRun, RunItem, RunStatus, SessionHold
from app.billing.runs import dispatch, driver, holds
from app.billing.runs import services as runs
from app.extensions import FlaskForm, db
from app.i18n import format_money
from app.plans.models import Plan

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
    # Required by the view for a step that cannot be undone (finalizing an approved run).
    confirm = BooleanField(_l("I understand that this cannot be undone."))


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
        form.period.errors = [*form.period.errors, str(error)]
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
    # The preview keeps plans as "code vN"; finance reads their names in the page's language.
    language = str(get_locale())
    plan_names = {
        f"{plan.code} v{plan.version}": f"{plan.name_in(language)} (v{plan.version})"
        for plan in db.session.scalars(select(Plan))
    }
    return render_template(
        "backoffice/finance/run.html",
        run=run,
        progress=runs.progress(run),
        failed=failed,
        to_deliver=to_deliver,
        waiting=waiting_for_provider(run.id) if run.status == RunStatus.FINALIZED else [],
        uninvoiced=uninvoiced,
        unrated=unrated,
        held_now=held,
        form=RunStepForm(),
        audit=entries_for("billing_run", run.id, limit=20),
        eager=dispatch.is_eager(),
        plan_names=plan_names,
    )


def _step(
    run_id: int,
    step: Callable[[InvoiceRun, str], object],
    message: str | Callable[[InvoiceRun], tuple[str, str]],
    *,
    confirm: Callable[[InvoiceRun], bool] = lambda _run: False,
) -> ResponseReturnValue:
    """Take one step of the run through ``runs.driver`` (which commits it); a refused step changes nothing.

    ``confirm`` says whether the step cannot be undone for this run: then the form must carry the ticked "I
    understand" box (checked here, so it holds without JavaScript and for a hand-made POST). ``message`` is the
    success message, or a function of the run after the step giving (message, category): what happened, not
    what was hoped."""
    run = _run_or_404(run_id)
    form = RunStepForm()
    if not form.validate_on_submit():
        flash(_("The form expired or the reason is too long; try again."), "error")
        return redirect(url_for("finance_runs.run_detail", run_id=run.id))
    if confirm(run) and not form.confirm.data:
        flash(_("Tick “I understand” to confirm: this step cannot be undone."), "error")
        return redirect(url_for("finance_runs.run_detail", run_id=run.id))
    try:
        step(run, form.reason.data)
    except BillingError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("finance_runs.run_detail", run_id=run.id))
    text, category = message(run) if callable(message) else (message, "success")
    flash(text, category)
    return redirect(url_for("finance_runs.run_detail", run_id=run.id))


def finalize_outcome(run: InvoiceRun) -> tuple[str, str]:
    """What finalizing did, said as it stands after the step: inline (no workers) the run is already finished or
    has failed accounts; only with workers is it still running."""
    db.session.refresh(run)
    counts = runs.progress(run)
    if run.status == RunStatus.FINALIZED:
        results = run.results or {}
        return _(
            "Run finalized: %(invoices)s invoice(s), %(total)s incl. VAT.",
            invoices=results.get("invoices", 0),
            total=format_money(int(results.get("total_minor", 0)), "EUR", minor_units=True),
        ), "success"
    if counts["failed"]:
        return _(
            "Finalizing stopped with %(count)s failed account(s); the others are finalized. Fix the cause, then retry.",
            count=counts["failed"],
        ), "error"
    if dispatch.is_eager() or not counts["pending"]:
        return _("Every account is finalized; complete the run below."), "info"
    return _("Finalizing started: the workers are on it and the progress is shown below."), "info"


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
        finalize_outcome,
        confirm=lambda run: run.status == RunStatus.APPROVED,  # the first finalize numbers the invoices
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
    rows = holds.held_queue()
    account_ids = {charge.account_id for _hold, charge, _cdr in rows if charge.account_id}
    names = (
        dict(db.session.execute(select(Account.id, Account.full_name).where(Account.id.in_(account_ids))).all())
        if account_ids
        else {}
    )
    return render_template(
        "backoffice/finance/holds.html",
        rows=rows,
        names=names,
        may_see_accounts=current_user.has_role(Role.SUPPORT),
        form=HoldDecisionForm(),
    )


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
        flash(str(error), "error")
        return redirect(url_for("finance_runs.hold_queue"))
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("finance_runs.hold_queue"))
