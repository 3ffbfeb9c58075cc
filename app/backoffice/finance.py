"""Finance back office: home and the reconciliation of CPO figures with our own calculation."""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, render_template, request

from app.accounts.models import Role
from app.backoffice.access import staff_required
from app.rating import reports

bp = Blueprint("finance", __name__, url_prefix="/backoffice/finance")

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month_arg() -> str | None:
    month = request.args.get("month") or None
    if month and not MONTH.match(month):
        abort(400)
    return month


@bp.get("/")
@staff_required(Role.FINANCE)
def home():  # type: ignore[no-untyped-def]
    return render_template("backoffice/finance/home.html")


@bp.get("/reconciliation")
@staff_required(Role.FINANCE)
def reconciliation():  # type: ignore[no-untyped-def]
    month = _month_arg()
    country_code = request.args.get("country_code") or None
    party_id = request.args.get("party_id") or None
    return render_template(
        "backoffice/finance/reconciliation.html", month=month, country_code=country_code, party_id=party_id,
        summary=reports.findings_summary(month),
        rows=reports.findings(month, country_code, party_id, limit=200) if (country_code or party_id) else [],
    )


@bp.get("/reconciliation.csv")
@staff_required(Role.FINANCE)
def reconciliation_csv():  # type: ignore[no-untyped-def]
    month = _month_arg()
    rows = reports.findings(month, request.args.get("country_code"), request.args.get("party_id"), limit=1_000_000)
    name = f"reconciliation-{month or 'all'}.csv"
    return Response(reports.findings_csv(rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
