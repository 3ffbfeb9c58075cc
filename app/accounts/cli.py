"""``flask users ...``: create users from the command line (staff, and drivers for operations)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.accounts import services
from app.accounts.models import Role
from app.extensions import db

users_cli = AppGroup("users", help="Manage users.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True, help="At least 10 characters.")
@click.option("--role", required=True, type=click.Choice([role.value for role in Role]))
@click.option("--name", default=None, help="Driver's full name (drivers only).")
def create_user_command(email: str, password: str, role: str, name: str | None) -> None:
    """Create a confirmed user with ROLE (driver, support, finance, operations or admin)."""
    profile = None
    if role == Role.DRIVER:
        profile = services.default_driver_profile(email)
        if name:
            profile.full_name = name
    try:
        user = services.create_user(email, password, Role(role), profile=profile)
    except services.AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"created {user.role} {user.email} (id {user.id})")
