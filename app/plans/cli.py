"""``flask plans ...``: the plan catalogue."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.extensions import db
from app.plans import services

plans_cli = AppGroup("plans", help="Plans and their versions.")


@plans_cli.command("seed")
def seed_command() -> None:
    """Create the standard plans (pay as you go, comfort, business) if missing."""
    created = services.seed_default_plans()
    db.session.commit()
    click.echo(f"created {len(created)} plans" if created else "standard plans already exist")


@plans_cli.command("list")
def list_command() -> None:
    """List current plan versions and their terms."""
    for plan in services.current_plans():
        cap = plan.session_fee_cap_per_month if plan.session_fee_cap_per_month is not None else "-"
        click.echo(
            f"{plan.code:<10} v{plan.version}  monthly {plan.monthly_fee}  markup {plan.markup_percent}% "
            f"+ {plan.markup_per_kwh}/kWh  session {plan.session_fee} (cap {cap})  "
            f"{'open' if plan.open_to_new else 'closed'}"
        )
