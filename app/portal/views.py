"""Portal landing and dashboard."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

from app.portal.access import driver_required

bp = Blueprint("portal", __name__)


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    if current_user.is_authenticated:
        if current_user.is_staff:
            return redirect(url_for("backoffice.dashboard"))
        return redirect(url_for("portal.dashboard"))
    return render_template("portal/index.html")


@bp.get("/dashboard")
@driver_required
def dashboard():  # type: ignore[no-untyped-def]
    return render_template("portal/dashboard.html", account=current_user.account)
