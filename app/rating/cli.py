"""``flask rating ...``: rate CDRs that have no charge yet."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.extensions import db
from app.rating import services

rating_cli = AppGroup("rating", help="Price CDRs for drivers and reconcile with CPOs.")


@rating_cli.command("rate-pending")
@click.option("--limit", type=int, default=None)
def rate_pending_command(limit: int | None) -> None:
    """Rate every CDR of a known account that has no charge yet; problems are listed for finance."""
    rated, problems = services.rate_pending(limit)
    db.session.commit()
    click.echo(f"rated {rated} CDRs")
    for problem in problems:
        click.echo(f"  not rated: {problem}", err=True)
