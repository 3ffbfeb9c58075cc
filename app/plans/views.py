"""Portal page where a driver sees their plan, its history, and changes it."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts.access import driver_required
from app.audit.services import Actor
from app.db import utcnow
from app.extensions import db
from app.plans import services
from app.plans.forms import ChangePlanForm
from app.plans.models import Plan

bp = Blueprint("plans", __name__, url_prefix="/plan")


@bp.get("/")
@driver_required
def index() -> str:
    account = current_user.account
    now = utcnow()
    return render_template(
        "portal/plans/index.html",
        current=services.plan_at(account.id, now),
        pending=services.pending_change(account.id, now),
        history=services.history(account.id),
        options=services.plans_open_to(account),
        form=ChangePlanForm(),
        language=account.language,
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
    try:
        subscription = services.change_plan(current_user.account, plan, Actor.of(current_user))
    except services.PlanError as error:
        db.session.rollback()
        flash(_(str(error)), "error")
        return redirect(url_for("plans.index"))
    db.session.commit()
    if subscription.starts_at > utcnow():
        flash(
            _(
                "Your plan changes to %(plan)s on %(date)s.",
                plan=plan.name_in(current_user.account.language),
                date=subscription.starts_at.date().isoformat(),
            ),
            "success",
        )
    else:
        flash(_("Your plan is now %(plan)s.", plan=plan.name_in(current_user.account.language)), "success")
    return redirect(url_for("plans.index"))
