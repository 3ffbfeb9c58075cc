"""``flask roaming quarantine`` (what partners sent that we could not store, and why) and
``flask roaming quarantine-reprocess`` (run it through the store path again, after a fix)."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.extensions import db
from app.roaming.cdr_listeners import cdr_stored
from app.roaming.cli.sync import find_partner_by_name
from app.roaming.models import Partner, QuarantinedObject
from app.roaming.receive import quarantine
from app.timestamps import ocpi_timestamp

# Added to ``flask roaming`` by app.roaming.cli.roaming_cli_group().
commands = AppGroup("roaming-quarantine")

MAX_REASON_SHOWN = 160
MAX_FAILURES_SHOWN = 20


def _names() -> dict[int, str]:
    return {
        partner.id: f"{partner.name} ({partner.country_code}/{partner.party_id})"
        for partner in db.session.scalars(select(Partner))
    }


def _short(text: str, limit: int = MAX_REASON_SHOWN) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _key(row: QuarantinedObject) -> str:
    parts = [row.country_code, row.party_id, row.ocpi_id, row.evse_uid, row.connector_id]
    while parts and parts[-1] is None:
        parts.pop()
    return "/".join(part or "?" for part in parts) or "(key unreadable)"


def _state(row: QuarantinedObject) -> str:
    if row.resolved_at is None:
        return "pending"
    return f"resolved {ocpi_timestamp(row.resolved_at)} ({row.outcome})"


@commands.command("quarantine")
@click.option("--partner", "partner_name", help="Only this partner (id, name or CC/PID).")
@click.option("--module", type=click.Choice(quarantine.MODULES), help="Only this module.")
@click.option("--all", "include_resolved", is_flag=True, help="List resolved objects too (kept for audit).")
@click.option("--limit", default=50, show_default=True, help="Objects listed at most.")
def quarantine_command(partner_name: str | None, module: str | None, include_resolved: bool, limit: int) -> None:
    """Objects partners sent that could not be stored: counts per partner/module and reason, then the objects."""
    partner_id = find_partner_by_name(partner_name).id if partner_name else None
    names = _names()
    summary = [
        row
        for row in quarantine.quarantine_summary()
        if (partner_id is None or row.partner_id == partner_id) and (module is None or row.module == module)
    ]
    if not summary:
        click.echo("nothing pending in the quarantine")
    for entry in summary:
        click.echo(
            f"{names.get(entry.partner_id, entry.partner_id)} {entry.module}: {entry.pending} pending, "
            f"oldest received {ocpi_timestamp(entry.oldest)}"
        )
    reasons = quarantine.pending_by_reason(partner_id, module)
    if reasons:
        click.echo("pending per reason:")
    for reason in reasons:
        click.echo(f"  {reason.pending:>6}  {names.get(reason.partner_id)} {reason.module}: {_short(reason.reason)}")
    for overflow in quarantine.overflow_counts(partner_id):
        if module is None or overflow.module == module:
            click.echo(
                f"not kept (the partner's quarantine was full): {overflow.dropped} {overflow.module} objects of "
                f"{names.get(overflow.partner_id)}, the last at {ocpi_timestamp(overflow.last_dropped_at)}"
            )
    rows = quarantine.list_quarantined(partner_id, module, pending_only=not include_resolved, limit=limit)
    total = quarantine.count_quarantined(partner_id, module, pending_only=not include_resolved)
    if rows:
        click.echo(f"objects ({len(rows)} of {total}, the most recently received first):")
    for row in rows:
        how = f"{row.via} {row.method}" if row.method else row.via
        click.echo(
            f"  #{row.id} {names.get(row.partner_id)} {row.module} {_key(row)} by {how}, received "
            f"{row.received_count}x ({ocpi_timestamp(row.first_received_at)} .. "
            f"{ocpi_timestamp(row.last_received_at)}), {_state(row)}: {_short(row.reason)}"
        )


@commands.command("quarantine-reprocess")
@click.option("--partner", "partner_name", help="Only this partner's objects (id, name or CC/PID).")
@click.option("--module", type=click.Choice(quarantine.MODULES), help="Only this module.")
@click.option("--id", "ids", type=int, multiple=True, help="Only this quarantined object (repeat for several).")
@click.option("--limit", type=int, default=None, help="Objects processed at most (the oldest first).")
def reprocess_command(partner_name: str | None, module: str | None, ids: tuple[int, ...], limit: int | None) -> None:
    """Run pending quarantined objects through the store path again (after a fix): stored ones are resolved and
    kept for audit, still-failing ones get their new reason."""
    partner_id = find_partner_by_name(partner_name).id if partner_name else None
    report = quarantine.reprocess(partner_id, list(ids) or None, module=module, limit=limit)
    db.session.commit()
    for cdr_id in report.new_cdr_ids:  # after the commit, as the door does: rating queues them
        cdr_stored(cdr_id)
    for quarantine_id in report.not_pending:
        click.echo(f"  #{quarantine_id}: not pending (resolved or unknown), skipped", err=True)
    for quarantine_id, reason in report.still_failing[:MAX_FAILURES_SHOWN]:
        click.echo(f"  #{quarantine_id} still refused: {_short(reason)}", err=True)
    if len(report.still_failing) > MAX_FAILURES_SHOWN:
        click.echo(f"  ... and {len(report.still_failing) - MAX_FAILURES_SHOWN} more", err=True)
    outcomes = ", ".join(f"{count} {outcome}" for outcome, count in sorted(report.outcomes.items())) or "none"
    click.echo(
        f"reprocessed {report.examined}: {report.resolved} resolved ({outcomes}), "
        f"{len(report.still_failing)} still refused"
    )
