"""The driver's own data pages: download everything we hold (GDPR access) and close the account."""

from __future__ import annotations

import json

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, logout_user

from app.accounts.access import driver_required
from app.accounts.passwords import verify_password
from app.audit.services import Actor
from app.customer_care.closure import ClosureError, close_account, export_account_data
from app.customer_care.forms import CloseAccountForm
from app.extensions import db

bp = Blueprint("customer_care", __name__)


@bp.get("/account/export.json")
@driver_required
def export_data() -> Response:
    data = export_account_data(current_user.account)
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="voltaro-my-data.json"'},
    )


@bp.route("/account/close", methods=["GET", "POST"])
@driver_required
def close() -> ResponseReturnValue:
    form = CloseAccountForm()
    if form.validate_on_submit():
        if not verify_password(current_user.password_hash, form.password.data):
            form.password.errors = [*form.password.errors, _("Your password is not correct.")]
        else:
            try:
                close_account(current_user.account, Actor.of(current_user), reason="closed by the driver")
            except ClosureError as error:
                db.session.rollback()
                form.form_errors.append(str(error))
            else:
                db.session.commit()
                logout_user()
                flash(_("Your account is closed. Your cards no longer work. Thank you for charging with us."), "info")
                return redirect(url_for("portal.index"))
    return render_template("portal/accounts/close.html", form=form)
