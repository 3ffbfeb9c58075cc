"""``flask demo generate``: fill a demo database with national-scale synthetic data (``app.demo.generate``)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import click

from app.db import utcnow
from app.demo.generate import GenerateError, GenerateOptions, RealDataError, default_month, generate
from app.extensions import db

# Exit statuses: 2 for options click or the generator refuse (as click's own usage errors), 3 for a database that
# holds real data, so a script can tell "wrong call" from "wrong database".
EXIT_REAL_DATA = 3


def _average(_context: click.Context, _parameter: click.Parameter, value: str) -> Decimal:
    try:
        average = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a number") from None
    if not average.is_finite():
        raise click.BadParameter(f"{value!r} is not a number")
    return average


@click.command("generate")
@click.option("--accounts", type=click.IntRange(min=1), default=1_000, show_default=True, help="Driver accounts.")
@click.option(
    "--cards-per-account",
    default="1.5",
    show_default=True,
    callback=_average,
    help="Cards per account on average (1 to 10): each account gets the whole part or one more.",
)
@click.option(
    "--cdrs", type=click.IntRange(min=0), default=10_000, show_default=True, help="Sessions, each with its CDR."
)
@click.option("--locations", type=click.IntRange(min=1), default=500, show_default=True, help="Charging locations.")
@click.option("--month", default=None, help="The last month with sessions, e.g. 2026-10 (default: last month).")
@click.option(
    "--months",
    type=click.IntRange(min=1, max=24),
    default=1,
    show_default=True,
    help="Spread the sessions over this many months, ending with --month.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="The same seed gives the same data.")
def generate_command(
    accounts: int, cards_per_account: Decimal, cdrs: int, locations: int, month: str | None, months: int, seed: int
) -> None:
    """Fill an empty or demo database with synthetic drivers, cards, CPOs, a hub, locations, sessions and CDRs
    (unrated: then run `flask rating rate-pending` and `flask billing run`). Refuses a database that holds real
    accounts (exit status 3); no option overrides that. Everything is written in one transaction."""
    now = utcnow()
    options = GenerateOptions(
        accounts=accounts,
        cards_per_account=cards_per_account,
        cdrs=cdrs,
        locations=locations,
        month=month or default_month(now),
        months=months,
        seed=seed,
    )
    try:
        report = generate(options, now, progress=click.echo)
    except RealDataError as error:
        db.session.rollback()
        click.echo(f"Error: refused: {error}.", err=True)
        raise SystemExit(EXIT_REAL_DATA) from None
    except GenerateError as error:
        db.session.rollback()
        raise click.UsageError(str(error)) from None
    db.session.commit()
    click.echo(f"generated {options.month} ({options.months} month(s), seed {seed}) in {report.seconds:.1f} s:")
    for name, figure in report.tables.items():
        click.echo(f"  {name:<26} {figure.rows:>10} rows  {figure.rows_per_second:>10.0f} rows/s written")
    outliers = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in sorted(report.outliers.items()))
    click.echo(f"  sessions: {outliers}")
    click.echo(
        f"  drivers log in as <name>.<account id>@generated.demo.invalid (first account {report.first_account_id}), "
        "password demo-password-1"
    )
