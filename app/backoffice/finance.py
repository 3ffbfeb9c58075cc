"""Finance back office: home, the reconciliation of CPO figures with our own calculation, the accounting
exports (invoices, lines, VAT per rate) and the margin report per CPO and month.

Runs and held sessions are in ``finance_runs``, invoices, credit notes and failed payments in
``finance_invoices``. The figures come from ``app.billing.reporting`` (set-based queries, streamed CSV).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from flask import Blueprint, Response, abort, render_template, request, stream_with_context
from sqlalchemy import func, select

from app.accounts.models import Role
from app.backoffice.access import staff_required
from app.billing import lookups
from app.billing import reporting as exports
from app.billing.models import HoldStatus, Invoice, InvoiceRun, InvoiceStatus, PaymentState, RunStatus, SessionHold
from app.billing.runs.services import last_ended_month
from app.customer_care.charge_points import PartyKey, operator_names
from app.extensions import db
from app.rating import reports

bp = Blueprint("finance", __name__, url_prefix="/backoffice/finance")

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month_arg(name: str = "month") -> str | None:
    month = request.args.get(name) or None
    if month and not MONTH.match(month):
        abort(400)
    return month


def _csv_response(chunks: Iterator[str], name: str) -> Response:
    return Response(
        stream_with_context(chunks),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/")
@staff_required(Role.FINANCE)
def home() -> str:
    counts = {
        "held": db.session.scalar(select(func.count(SessionHold.id)).where(SessionHold.status == HoldStatus.HELD)),
        "failed": db.session.scalar(
            select(func.count(Invoice.id)).where(
                Invoice.status == InvoiceStatus.FINALIZED,
                Invoice.payment_state.in_([PaymentState.FAILED, PaymentState.UNCOLLECTIBLE]),
            )
        ),
        "open_runs": db.session.scalar(
            select(func.count(InvoiceRun.id)).where(
                InvoiceRun.status.in_([RunStatus.PREVIEW, RunStatus.APPROVED, RunStatus.FINALIZING])
            )
        ),
    }
    return render_template("backoffice/finance/home.html", counts=counts)


@bp.get("/reconciliation")
@staff_required(Role.FINANCE)
def reconciliation() -> str:
    month = _month_arg()
    country_code = request.args.get("country_code") or None
    party_id = request.args.get("party_id") or None
    return render_template(
        "backoffice/finance/reconciliation.html",
        month=month,
        country_code=country_code,
        party_id=party_id,
        summary=reports.findings_summary(month),
        rows=reports.findings(month, country_code, party_id, limit=200) if (country_code or party_id) else [],
    )


@bp.get("/reconciliation.csv")
@staff_required(Role.FINANCE)
def reconciliation_csv() -> Response:
    month = _month_arg()
    rows = reports.findings(month, request.args.get("country_code"), request.args.get("party_id"), limit=1_000_000)
    name = f"reconciliation-{month or 'all'}.csv"
    return Response(
        reports.findings_csv(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- exports for accounting ----------------------------------------------------------------------------------


@bp.get("/exports")
@staff_required(Role.FINANCE)
def export_page() -> str:
    period = _month_arg("period")
    return render_template(
        "backoffice/finance/exports.html", period=period, vat=exports.vat_per_rate(period) if period else []
    )


@bp.get("/exports/<any(invoices, lines, vat):kind>.csv")
@staff_required(Role.FINANCE)
def export_csv(kind: str) -> Response:
    period = _month_arg("period")
    chunks = {
        "invoices": lambda: exports.invoices_csv(period),
        "lines": lambda: exports.lines_csv(period),
        "vat": lambda: exports.vat_csv(exports.vat_per_rate(period)),
    }[kind]()
    return _csv_response(chunks, f"{kind}-{period or 'all'}.csv")


def _margin_months(*, default_latest: bool = False) -> tuple[str, str, list[str]]:
    first = _month_arg("from")
    last = _month_arg("to")
    if first is None:
        if last is None:
            if not default_latest:
                return "", "", []
            # A first visit shows the latest invoiced month (else the last month that has ended), not a blank.
            last = lookups.latest_period() or last_ended_month()
        first = last
    elif last is None:
        last = first
    if first > last:
        first, last = last, first
    return first, last, exports.months_between(first, last)


@bp.get("/margin")
@staff_required(Role.FINANCE)
def margin() -> str:
    first, last, months = _margin_months(default_latest=True)
    rows = exports.margin_report(months) if months else []
    return render_template(
        "backoffice/finance/margin.html",
        first=first,
        last=last,
        months=months,
        rows=rows,
        cpo_names=operator_names(PartyKey(row.country_code, row.party_id) for row in rows),
        party_key=PartyKey,
    )


@bp.get("/margin.csv")
@staff_required(Role.FINANCE)
def margin_csv() -> Response:
    first, last, months = _margin_months()
    if not months:
        abort(400)
    return _csv_response(exports.margin_csv(exports.margin_report(months)), f"margin-{first}-{last}.csv")
