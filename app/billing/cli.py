"""``flask billing ...``: the monthly run (preview, approve, finalize with progress) and invoice look-ups.

The run's steps are ``runs.driver``'s, the same the finance back office takes; this door adds the progress on
the terminal and waits for the workers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
from flask.cli import AppGroup

from app.audit.services import Actor
from app.billing.invoicing import invoices
from app.billing.invoicing.invoices import BillingError
from app.billing.models import Invoice, InvoiceRun, InvoiceStatus, RunStatus
from app.billing.runs import driver
from app.billing.runs import services as runs
from app.billing.runs.driver import Advance, Delivery, RunObserver
from app.extensions import db

billing_cli = AppGroup("billing", help="Monthly invoicing.")


def _actor() -> Actor:
    return Actor.system("cli")


def _fail(error: Exception) -> NoReturn:
    db.session.rollback()
    raise click.ClickException(str(error)) from error


class _ProgressOnTheTerminal(RunObserver):
    """The run's progress bars and figures, as operations scripts read them (JSON on stdout)."""

    @contextmanager
    def finalizing(self, run: InvoiceRun) -> Iterator[Advance]:
        with click.progressbar(length=run.accounts_total, label=f"invoicing {run.period}", show_pos=True) as bar:
            yield bar.update

    def finalized(self, run: InvoiceRun, progress: dict[str, int]) -> None:
        failed = runs.failed_items(run) if progress["failed"] else []
        click.echo(
            json.dumps(
                {
                    "run": run.id,
                    "status": run.status.value,
                    "progress": progress,
                    "results": run.results,
                    "failed_accounts": failed,
                },
                indent=2,
            )
        )
        if progress["failed"]:
            click.echo(
                f"{progress['failed']} accounts failed (failed_accounts above and the run in the back office "
                "say why); fix their data, then rerun this command to retry them.",
                err=True,
            )

    @contextmanager
    def delivering(self, invoices: int) -> Iterator[Callable[[], None]]:
        with click.progressbar(length=invoices, label="rendering, emailing and collecting") as bar:
            yield lambda: bar.update(1)

    def delivered(self, delivery: Delivery) -> None:
        if delivery.inline:
            click.echo(json.dumps({"delivered": delivery.invoices, "payments": delivery.payments}))
        else:
            click.echo(f"queued delivery of {delivery.invoices} invoices")


@billing_cli.command("run")
@click.option("--period", required=True, help="The month to invoice, e.g. 2026-10.")
@click.option("--dry-run", is_flag=True, help="Compute and store the preview only.")
@click.option("--no-deliver", is_flag=True, help="Finalize only; render, email and collect later with `deliver`.")
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="With --dry-run: compose the preview's figures in this many processes (a national month: one per core "
    "the database can spare).",
)
def run_command(period: str, dry_run: bool, no_deliver: bool, processes: int) -> None:
    """Preview a month (--dry-run), or finalize an approved run. Re-running resumes an interrupted run."""
    try:
        runs.check_month_ended(period)
        if dry_run:
            previewed = driver.preview(period, _actor(), processes=processes)
            click.echo(
                json.dumps(
                    {
                        "run": previewed.id,
                        "period": period,
                        "status": previewed.status.value,
                        "preview": previewed.preview,
                    },
                    indent=2,
                )
            )
            return
        run = runs.run_for(period)
        if run is None:
            raise BillingError(f"no run for {period}: preview it with --dry-run and approve it first")
        if run.status == RunStatus.FINALIZED:
            click.echo(f"the run for {period} is already finalized: {json.dumps(run.results)}")
            return
        # Waits for the workers when there are any, so the command ends with the run's figures.
        driver.finalize(
            run, _actor(), then_deliver=not no_deliver, wait_for_workers=True, observer=_ProgressOnTheTerminal()
        )
    except BillingError as error:
        _fail(error)


@billing_cli.command("deliver")
@click.option("--period", required=True)
def deliver_command(period: str) -> None:
    """(Re)deliver the finalized run's invoices that have no PDF or email yet; payments are collected once."""
    run = runs.run_for(runs.check_period(period))
    if run is None or run.status != RunStatus.FINALIZED:
        raise click.ClickException(f"the run for {period} is not finalized")
    driver.deliver(run, _actor(), observer=_ProgressOnTheTerminal())


@billing_cli.command("dunning")
def dunning_command() -> None:
    """Retry failed payments that are due, send reminders, block cards after the last attempt (run hourly)."""
    from app.billing.collection.dunning_runner import run_dunning

    click.echo(json.dumps(run_dunning().as_dict()))


@billing_cli.command("approve")
@click.option("--period", required=True)
def approve_command(period: str) -> None:
    """Approve the previewed run of a month (finance)."""
    try:
        run = runs.run_for(runs.check_month_ended(period))
        if run is None:
            raise BillingError(f"no preview for {period}: run `flask billing run --period {period} --dry-run`")
        driver.approve(run, _actor())
    except BillingError as error:
        _fail(error)
    click.echo(f"approved the run for {period}: {run.accounts_total} accounts")


@billing_cli.command("list")
@click.option("--period", required=True)
@click.option("--json", "as_json", is_flag=True)
def list_command(period: str, as_json: bool) -> None:
    """Print the month's invoices (their frozen snapshots with payment state)."""
    found = db.session.scalars(
        db.select(Invoice)
        .where(Invoice.period == period, Invoice.status == InvoiceStatus.FINALIZED)
        .order_by(Invoice.series, Invoice.sequence)
    ).all()
    if as_json:
        click.echo(json.dumps([invoices.public_view(invoice) for invoice in found], indent=2))
        return
    for invoice in found:
        click.echo(
            f"{invoice.number}  account {invoice.account_id:08d}  {invoice.total_minor / 100:>10.2f} "
            f"{invoice.currency}  {invoice.payment_state.value}"
        )


@billing_cli.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True)
def show_command(number: str, as_json: bool) -> None:
    """Print one invoice by number."""
    invoice = invoices.invoice_by_number(number)
    if invoice is None:
        raise click.ClickException(f"no invoice {number}")
    view = invoices.public_view(invoice)
    click.echo(
        json.dumps(view, indent=2)
        if as_json
        else f"{invoice.number} {invoice.period} total {invoice.total_minor / 100:.2f} {invoice.currency} "
        f"({invoice.payment_state.value})"
    )


@billing_cli.command("uninvoiced")
@click.option("--period", required=True)
def uninvoiced_command(period: str) -> None:
    """List billable sessions of the month on no invoice, our drivers' CDRs that could not be priced (with why,
    when a rating attempt recorded it) and the accounts the month's run could not invoice (with why). All should
    be empty after a run; exit status 1 when not."""
    runs.check_period(period)
    ids, unrated = runs.uninvoiced_sessions(period), runs.unrated_cdrs(period)
    run = runs.run_for(period)
    failed = runs.failed_items(run, limit=1000) if run is not None else []
    click.echo(
        json.dumps(
            {
                "period": period,
                "uninvoiced_session_charge_ids": ids,
                "unrated_cdr_ids": unrated,
                "unrated_reasons": runs.unrated_reasons(period),
                "failed_accounts": failed,
            }
        )
    )
    if ids or unrated or failed:
        raise SystemExit(1)
