"""``flask roaming import-locations FILE``, ``import-tariffs FILE`` and ``pull PARTNER [--module ...] [--restart |
--from DATE]``."""

from __future__ import annotations

import datetime as dt
import time

import click
from flask.cli import AppGroup
from sqlalchemy import or_, select

from app.db import utcnow
from app.extensions import db
from app.roaming.models import Partner
from app.roaming.ocpi.reader import partner_datetime
from app.roaming.receive.importers import ImportFileError, ImportReport, import_locations, import_tariffs
from app.roaming.receive.pull import MODULES, PullError, PullResult, pull
from app.roaming.receive.pull_batch import sender_modules

# Added to ``flask roaming`` by app.roaming.cli.roaming_cli_group().
commands = AppGroup("roaming-sync")

MAX_ERRORS_SHOWN = 20


def _progress(done: int, total: int) -> None:
    click.echo(f"  {done}/{total}", err=True)


def _report(kind: str, report: ImportReport, seconds: float) -> None:
    for index, oid, message in report.errors[:MAX_ERRORS_SHOWN]:
        click.echo(f"  skipped #{index} (id {oid}): {message}", err=True)
    if report.failed > MAX_ERRORS_SHOWN:
        click.echo(f"  ... and {report.failed - MAX_ERRORS_SHOWN} more", err=True)
    click.echo(
        f"{kind}: {report.total} read, {report.stored} stored, {report.stale} older than stored (kept ours), "
        f"{report.failed} skipped as invalid, in {seconds:.1f}s"
    )


@commands.command("import-locations")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--batch-size", default=500, show_default=True)
def import_locations_command(file: str, batch_size: int) -> None:
    """Import an OCPI Location array (JSON or gzipped JSON)."""
    started = time.perf_counter()
    try:
        report = import_locations(file, batch_size=batch_size, progress=_progress)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from exc
    _report("locations", report, time.perf_counter() - started)


@commands.command("import-tariffs")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--batch-size", default=500, show_default=True)
def import_tariffs_command(file: str, batch_size: int) -> None:
    """Import an OCPI Tariff array (JSON or gzipped JSON); every distinct last_updated is kept as a version."""
    started = time.perf_counter()
    try:
        report = import_tariffs(file, batch_size=batch_size, progress=_progress)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from exc
    _report("tariffs", report, time.perf_counter() - started)


def find_partner_by_name(name: str) -> Partner:
    """A partner by name, or by ``CC/PID`` / ``CCPID`` / id."""
    compact = name.replace("/", "").replace("-", "").upper()
    conditions = [Partner.name == name]
    if len(compact) == 5:
        conditions.append((Partner.country_code == compact[:2]) & (Partner.party_id == compact[2:]))
    if name.isdigit():
        conditions.append(Partner.id == int(name))
    partner = db.session.scalar(select(Partner).where(or_(*conditions)).limit(1))
    if partner is None:
        raise click.ClickException(f"no partner {name!r}")
    return partner


@commands.command("pull")
@click.argument("partner_name")
@click.option(
    "--module",
    "modules",
    type=click.Choice(MODULES),
    multiple=True,
    help="Module to sync (repeat for several; default: every module the partner sends).",
)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Objects per page asked for."
)
@click.option("--restart", is_flag=True, help="Forget the cursor: pull everything again, from the beginning.")
@click.option(
    "--from",
    "since_text",
    metavar="DATE",
    help="Forget the cursor and pull what changed from DATE on (2026-11-01, or a date-time in UTC or with offset).",
)
def pull_command(
    partner_name: str, modules: tuple[str, ...], limit: int, restart: bool, since_text: str | None
) -> None:
    """Sync modules from a partner's Sender interface (incremental, resumes after a failure).

    Each module on its own: one that fails is reported and the others are pulled; the command then fails."""
    if restart and since_text is not None:
        raise click.UsageError("give either --restart or --from, not both")
    since = _since(since_text) if since_text is not None else None
    partner = find_partner_by_name(partner_name)
    wanted = [module for module in MODULES if module in modules] if modules else sender_modules(partner)
    if not wanted:
        raise click.ClickException(f"partner {partner.name} has no Sender endpoint of {', '.join(MODULES)}")
    failed = []
    for module in wanted:
        started = time.perf_counter()

        def progress(result: PullResult) -> None:
            click.echo(f"  {result.module}: page {result.pages}, {result.received} objects", err=True)

        try:
            result = pull(partner, module, limit=limit, progress=progress, restart=restart, since=since)
        except PullError as exc:
            click.echo(f"{module}: {exc}", err=True)
            failed.append(module)
            continue
        for oid, message in result.errors[:MAX_ERRORS_SHOWN]:
            click.echo(f"  quarantined {oid}: {message}", err=True)
        for note in result.notes:
            click.echo(f"  note: {note}", err=True)
        click.echo(
            f"{module}: {'resumed, ' if result.resumed else ''}{result.pages} pages, {result.received} "
            f"received, {result.stored} stored, {result.stale} older than stored, {len(result.errors)} "
            f"quarantined (`flask roaming quarantine`), in {time.perf_counter() - started:.1f}s"
        )
    if failed:
        raise click.ClickException(
            f"pull of {', '.join(failed)} from {partner.name} failed (run again to resume, or --restart)"
        )


def _since(text: str) -> dt.datetime:
    """``--from``: an ISO date (midnight UTC) or date-time (UTC without an offset), not in the future."""
    try:
        moment = partner_datetime(text)
    except ValueError:
        raise click.BadParameter(
            f"{text[:40]!r} is not a date (2026-11-01) or date-time (2026-11-01T12:00:00Z)", param_hint="--from"
        ) from None
    if moment > utcnow():
        raise click.BadParameter(f"{text[:40]!r} is in the future", param_hint="--from")
    return moment
