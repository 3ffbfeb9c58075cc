"""``flask accounts ...``: jobs on driver accounts that customer care owns."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.extensions import db

accounts_cli = AppGroup("accounts", help="Driver accounts.")


@accounts_cli.command("anonymise-expired")
def anonymise_expired_command() -> None:
    """Erase the billing identity of closed accounts past their legal retention period (run daily)."""
    from app.customer_care.closure import anonymise_expired

    count = anonymise_expired()
    db.session.commit()
    click.echo(f"anonymised {count} accounts")
