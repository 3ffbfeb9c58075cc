"""Back office shell: a dashboard per role, the audit log, and the operations area nested under it."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user
from sqlalchemy import func, select

from app.accounts.models import Account, Role, User
from app.audit import services as audit_services
from app.backoffice.access import staff_required
from app.backoffice.operations import bp as operations_bp
from app.extensions import db

bp = Blueprint("backoffice", __name__, url_prefix="/backoffice")
# The operations area (/backoffice/operations): registered with the back office wherever the back office is.
bp.register_blueprint(operations_bp)


@bp.get("/")
@staff_required()
def dashboard() -> str:
    figures = {
        "accounts": db.session.scalar(select(func.count(Account.id))),
        "unconfirmed": db.session.scalar(
            select(func.count(User.id)).where(User.role == Role.DRIVER, User.email_confirmed_at.is_(None))
        ),
    }
    return render_template("backoffice/dashboard.html", figures=figures, role=current_user.role)


@bp.get("/admin/audit")
@staff_required(Role.ADMIN)
def audit_log() -> str:
    action = request.args.get("action") or None
    entries = audit_services.recent(limit=200, action=action)
    return render_template("backoffice/admin/audit.html", entries=entries, action=action)
