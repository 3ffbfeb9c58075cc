"""``flask roaming import-locations FILE``, ``import-tariffs FILE`` and ``pull PARTNER --module ...``."""

from __future__ import annotations

import time

import click
from flask.cli import AppGroup
from sqlalchemy import or_, select

from app.extensions import db
from app.roaming.models import Partner
from app.roaming.receive.importers import ImportFileError, ImportReport, import_locations, import_tariffs
from app.roaming.receive.pull import MODULES, PullError, PullResult, pull

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
    required=True,
    help="Module to sync (repeat for several).",
)
@click.option("--limit", default=100, show_default=True, help="Objects per page asked for.")
def pull_command(partner_name: str, modules: tuple[str, ...], limit: int) -> None:
    """Sync modules from a partner's Sender interface (incremental, resumes after a failure)."""
    partner = find_partner_by_name(partner_name)
    for module in modules:
        started = time.perf_counter()

        def progress(result: PullResult) -> None:
            click.echo(f"  {result.module}: page {result.pages}, {result.received} objects", err=True)

        try:
            result = pull(partner, module, limit=limit, progress=progress)
        except PullError as exc:
            raise click.ClickException(f"{exc} (run again to resume)") from exc
        for oid, message in result.errors[:MAX_ERRORS_SHOWN]:
            click.echo(f"  skipped {oid}: {message}", err=True)
        click.echo(
            f"{module}: {'resumed, ' if result.resumed else ''}{result.pages} pages, {result.received} "
            f"received, {result.stored} stored, {result.stale} older than stored, {len(result.errors)} "
            f"skipped, in {time.perf_counter() - started:.1f}s"
        )
