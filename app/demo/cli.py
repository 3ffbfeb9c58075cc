"""``flask demo seed``: demo users for the embedded set-up. Re-running keeps what exists."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.accounts import services
from app.accounts.models import Role
from app.extensions import db
from app.plans.services import seed_default_plans

demo_cli = AppGroup("demo", help="Demo data.")

DEMO_PASSWORD = "demo-password-1"

DEMO_DRIVER = services.DriverProfile(
    full_name="Eva Peeters",
    street="Grote Markt 1",
    postal_code="2000",
    city="Antwerpen",
    country="BE",
    language="nl",
)

DEMO_USERS = [
    ("driver@example.com", Role.DRIVER),
    ("support@example.com", Role.SUPPORT),
    ("finance@example.com", Role.FINANCE),
    ("admin@example.com", Role.ADMIN),
]


@demo_cli.command("seed")
def seed_command() -> None:
    """Create the demo driver, support, finance and admin users (idempotent)."""
    seed_default_plans()
    click.echo("Demo users (email / password / role):")
    for email, role in DEMO_USERS:
        user = services.find_user_by_email(email)
        if user is None:
            profile = DEMO_DRIVER if role == Role.DRIVER else None
            services.create_user(email, DEMO_PASSWORD, role, profile=profile, actor_label="demo-seed")
            state = "created"
        else:
            state = "exists, password unchanged"
        click.echo(f"  {email:<24} {DEMO_PASSWORD:<18} {role.value:<8} ({state})")
    db.session.commit()
