"""Finance reports on rated sessions: reconciliation findings per CPO and month (with CSV)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from app.charging.models import Cdr
from app.csv_export import csv_writer
from app.extensions import db
from app.rating.models import ReconciliationFinding


@dataclass(frozen=True)
class FindingsSummary:
    country_code: str
    party_id: str
    month: str
    currency: str
    count: int
    cpo_total: Decimal
    our_total: Decimal
    difference: Decimal


def findings_summary(month: str | None = None) -> list[FindingsSummary]:
    query = (
        select(
            ReconciliationFinding.country_code,
            ReconciliationFinding.party_id,
            ReconciliationFinding.month,
            ReconciliationFinding.currency,
            func.count(ReconciliationFinding.id),
            func.sum(ReconciliationFinding.cpo_total_excl_vat),
            func.sum(ReconciliationFinding.our_total_excl_vat),
            func.sum(ReconciliationFinding.difference),
        )
        .group_by(
            ReconciliationFinding.country_code,
            ReconciliationFinding.party_id,
            ReconciliationFinding.month,
            ReconciliationFinding.currency,
        )
        .order_by(
            ReconciliationFinding.month.desc(), ReconciliationFinding.country_code, ReconciliationFinding.party_id
        )
    )
    if month:
        query = query.where(ReconciliationFinding.month == month)
    return [
        FindingsSummary(cc, pid, m, cur, count, Decimal(cpo), Decimal(ours), Decimal(diff))
        for cc, pid, m, cur, count, cpo, ours, diff in db.session.execute(query)
    ]


def findings(
    month: str | None = None, country_code: str | None = None, party_id: str | None = None, limit: int = 1000
) -> list[tuple[ReconciliationFinding, Cdr]]:
    query = (
        select(ReconciliationFinding, Cdr)
        .join(Cdr, Cdr.id == ReconciliationFinding.cdr_id)
        .order_by(ReconciliationFinding.month.desc(), Cdr.start_date_time)
        .limit(limit)
    )
    if month:
        query = query.where(ReconciliationFinding.month == month)
    if country_code:
        query = query.where(ReconciliationFinding.country_code == country_code.upper())
    if party_id:
        query = query.where(ReconciliationFinding.party_id == party_id.upper())
    return list(db.session.execute(query))


CSV_COLUMNS = [
    "month",
    "country_code",
    "party_id",
    "cdr_id",
    "session_start",
    "kwh",
    "currency",
    "cpo_total_excl_vat",
    "our_total_excl_vat",
    "difference",
    "status",
]


def findings_csv(rows: list[tuple[ReconciliationFinding, Cdr]]) -> str:
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for finding, cdr in rows:
        writer.writerow(
            [
                finding.month,
                finding.country_code,
                finding.party_id,
                cdr.ocpi_id,
                cdr.start_date_time.isoformat(),
                cdr.total_energy,
                finding.currency,
                finding.cpo_total_excl_vat,
                finding.our_total_excl_vat,
                finding.difference,
                finding.status,
            ]
        )
    return buffer.getvalue()
