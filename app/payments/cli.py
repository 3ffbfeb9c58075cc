"""``flask payments ...``: maintenance of the payment methods we keep for Stripe."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.extensions import db
from app.payments import services

payments_cli = AppGroup("payments", help="Payment methods (Stripe).")


@payments_cli.command("backfill-mandates")
@click.option("--limit", type=int, default=None, help="At most this many methods (default: all).")
def backfill_mandates_command(limit: int | None) -> None:
    """Fill in the SEPA mandate reference of methods saved before it was recorded, from Stripe.

    One commit per method, so an interruption keeps what was done; running it again continues with the rest.
    Exit status 1 when Stripe could not be asked for some of them."""
    filled, missing, failed = 0, [], []
    for row in services.sepa_methods_without_mandate(limit):
        method_id = row.stripe_payment_method_id
        try:
            reference = services.fill_mandate_reference(row)
        except services.PaymentError:
            db.session.rollback()
            failed.append(method_id)
            continue
        db.session.commit()
        if reference:
            filled += 1
        else:
            missing.append(method_id)
    click.echo(f"mandate references filled in: {filled}")
    for method_id in missing:
        click.echo(f"  no mandate known at Stripe for {method_id}", err=True)
    for method_id in failed:
        click.echo(f"  Stripe could not be asked about {method_id}; run again later", err=True)
    if failed:
        raise SystemExit(1)
