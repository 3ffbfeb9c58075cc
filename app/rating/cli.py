"""``flask rating ...``: rate CDRs that have no charge yet."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup

from app.extensions import db
from app.plans.services import billing_zone
from app.rating import pending, services
from app.rating.problems import PendingOutcome

EXAMPLES_PER_REASON = 5

rating_cli = AppGroup("rating", help="Price CDRs for drivers and reconcile with CPOs.")


@rating_cli.command("rate-pending")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Try at most this many CDRs.")
@click.option(
    "--examples",
    type=click.IntRange(min=1),
    default=EXAMPLES_PER_REASON,
    show_default=True,
    help="CDR ids shown for each reason.",
)
def rate_pending_command(limit: int | None, examples: int) -> None:
    """Rate every CDR of a known account that has no charge yet, each on its own. Those that cannot be rated are
    counted by reason, the most frequent first, with a few CDR ids each (every CDR's own reason is kept for
    finance: ``flask billing uninvoiced``); the exit status is 1 when some could not be rated."""
    outcome = PendingOutcome()
    for batch in pending.rate_pending_batches(limit):
        db.session.commit()  # each batch is kept as soon as it is rated: an interrupted pass loses nothing
        outcome.rated += batch.rated
        outcome.not_rated.extend(batch.not_rated)
    click.echo(f"rated {outcome.rated} CDRs; could not rate {len(outcome.not_rated)}")
    groups = outcome.groups(examples)
    if not groups:
        return
    click.echo(f"not rated, by reason ({len(groups)}):")
    for group in groups:
        more = group.count - len(group.examples)
        ids = ", ".join(group.examples) + (f" and {more} more" if more else "")
        click.echo(f"  {group.count} × {group.kind}: {ids}")
    raise SystemExit(1)


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
