"""``flask rating ...``: rate CDRs that have no charge yet."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup

from app.extensions import db
from app.plans.services import billing_zone
from app.rating import services

rating_cli = AppGroup("rating", help="Price CDRs for drivers and reconcile with CPOs.")


@rating_cli.command("rate-pending")
@click.option("--limit", type=int, default=None)
def rate_pending_command(limit: int | None) -> None:
    """Rate every CDR of a known account that has no charge yet, each on its own; those that cannot be rated are
    counted and listed with why (also kept for finance: ``flask billing uninvoiced``)."""
    rated, problems = services.rate_pending(limit)
    db.session.commit()
    click.echo(f"rated {rated} CDRs; could not rate {len(problems)}")
    for problem in problems:
        click.echo(f"  not rated: {problem}", err=True)


@rating_cli.command("backfill-estimates")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Sessions started on or after this day (billing time zone); default: the first day of last month.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, help="Sessions per committed batch.")
def backfill_estimates_command(since: dt.datetime | None, batch_size: int) -> None:
    """Store the price estimate of sessions rated before estimates were kept, so that the invoice run's
    "priced far from its estimate" guard also checks them. Commits each batch; safe to run again."""
    zone = billing_zone()
    if since is None:
        today = dt.datetime.now(zone).date()
        last_month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
        start = dt.datetime.combine(last_month, dt.time(), tzinfo=zone)
    else:
        start = since.replace(tzinfo=zone)
    filled = unknown = 0
    after = 0
    while True:
        batch = services.backfill_estimates(start.astimezone(dt.UTC), after_charge_id=after, batch_size=batch_size)
        db.session.commit()
        if batch.last_charge_id is None:
            break
        filled, unknown, after = filled + batch.filled, unknown + batch.unknown, batch.last_charge_id
    click.echo(f"estimates stored: {filled}; no tariff known for the connector: {unknown}")
