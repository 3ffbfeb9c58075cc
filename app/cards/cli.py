"""``flask cards ...``: card stock import, issuing a card for operations and demos, expiry."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from app.accounts.services import find_user_by_email
from app.audit.services import Actor
from app.cards import services, stock
from app.cards.lifecycle import TransitionError
from app.cards.tokens import token_object
from app.extensions import db

cards_cli = AppGroup("cards", help="Charge cards and card stock.")


@cards_cli.command("import-stock")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_stock_command(csv_file: Path) -> None:
    """Import pre-encoded cards from the manufacturer's CSV (uid,visual_number). All lines or none."""
    try:
        rows = stock.parse_stock_csv(csv_file.read_text(encoding="utf-8-sig"))
        count = stock.import_stock(rows, batch=csv_file.name)
    except stock.StockImportError as error:
        db.session.rollback()
        click.echo(f"Refused {csv_file.name}; nothing was imported:", err=True)
        click.echo(str(error), err=True)
        raise SystemExit(1) from error
    except UnicodeDecodeError as error:
        raise click.ClickException(f"{csv_file} is not UTF-8 text") from error
    db.session.commit()
    levels = stock.stock_levels()
    click.echo(f"imported {count} cards from {csv_file.name}; {levels.available} now in stock")


@cards_cli.command("issue")
@click.option("--email", required=True, help="The driver's login email.")
@click.option("--label", default=None)
def issue_command(email: str, label: str | None) -> None:
    """Issue a card from stock to the driver's account, activate it, and print it as OCPI Token JSON."""
    user = find_user_by_email(email)
    if user is None or user.account is None:
        raise click.ClickException(f"no driver account for {email}")
    actor = Actor.system("cli")
    try:
        card = services.order_card(user.account, actor, label=label)
        services.ship_card(card, actor)
        # Operations hand the card over in person: activation by staff skips the payment-method check.
        services.activate_by_operations(card, actor)
    except (services.CardError, TransitionError) as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(json.dumps(token_object(card, language=user.account.language), indent=2))


@cards_cli.command("expire-due")
def expire_due_command() -> None:
    """Expire cards whose validity ended (run daily)."""
    count = services.expire_due_cards()
    db.session.commit()
    click.echo(f"expired {count} cards")


@cards_cli.command("stock")
def stock_command() -> None:
    """Show stock levels."""
    levels = stock.stock_levels()
    click.echo(f"available: {levels.available}  assigned: {levels.assigned}")
