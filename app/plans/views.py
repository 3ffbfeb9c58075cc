"""Portal page where a driver sees their plan, its history, changes it and cancels a scheduled change."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts.access import driver_required
from app.accounts.services import send_pending
from app.audit.services import Actor
from app.db import utcnow
from app.extensions import FlaskForm, db
from app.i18n import format_day
from app.plans import services
from app.plans.forms import ChangePlanForm
from app.plans.models import Plan
from app.plans.notices import plan_change_emails

bp = Blueprint("plans", __name__, url_prefix="/plan")


@bp.get("/")
@driver_required
def index() -> str:
    account = current_user.account
    now = utcnow()
    pending = services.pending_change(account.id, now)
    return render_template(
        "portal/plans/index.html",
        current=services.plan_at(account.id, now),
        pending=pending,
        pending_day=services.effective_day(pending) if pending else None,
        history=services.history(account.id),
        options=services.plans_open_to(account),
        form=ChangePlanForm(),
        cancel_form=FlaskForm(),
        language=str(get_locale()),  # the page's language, which may differ from the account's
    )


@bp.post("/change")
@driver_required
def change() -> ResponseReturnValue:
    form = ChangePlanForm()
    if not form.validate_on_submit() or not str(form.plan_id.data).isdigit():
        abort(400)
    plan = db.session.get(Plan, int(form.plan_id.data))
    if plan is None:
        abort(404)
    account = current_user.account
    try:
        subscription = services.change_plan(account, plan, Actor.of(current_user))
    except services.PlanError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("plans.index"))
    emails = plan_change_emails(account, subscription)
    db.session.commit()
    send_pending(emails)
    name = plan.name_in(str(get_locale()))
    if subscription.starts_at > utcnow():
        day = format_day(services.effective_day(subscription))
        flash(_("Your plan changes to %(plan)s on %(date)s.", plan=name, date=day), "success")
    else:
        flash(_("Your plan is now %(plan)s.", plan=name), "success")
    return redirect(url_for("plans.index"))


@bp.post("/scheduled-change/cancel")
@driver_required
def cancel_change() -> ResponseReturnValue:
    """Keep the current plan: the change scheduled for next month is dropped."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    account = current_user.account
    try:
        current = services.cancel_pending_change(account, Actor.of(current_user))
    except services.PlanError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("plans.index"))
    emails = plan_change_emails(account, current, cancelled=True)
    db.session.commit()
    send_pending(emails)
    flash(
        _("The scheduled change is cancelled: you stay on %(plan)s.", plan=current.plan.name_in(str(get_locale()))),
        "success",
    )
    return redirect(url_for("plans.index"))
