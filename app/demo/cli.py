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
    _seed_cards()
    db.session.commit()


def _seed_cards() -> None:
    """A stock of demo cards, and one active card for the demo driver (once)."""
    from app.audit.services import Actor
    from app.cards import services as card_services
    from app.cards import stock

    if stock.stock_levels().available + stock.stock_levels().assigned == 0:
        rows = [(n, f"04DE{n:04X}", f"VLT-DEMO-{n:04d}") for n in range(1, 101)]
        stock.import_stock(rows, batch="demo")
        click.echo("Imported 100 demo cards into stock.")
    driver = services.find_user_by_email("driver@example.com")
    if driver is None:
        return
    account = driver.account
    assert account is not None  # a driver always has an account (constraint driver_has_account)
    if not card_services.cards_of(account.id):
        actor = Actor.system("demo-seed")
        card = card_services.order_card(account, actor, label="Demo card")
        card_services.ship_card(card, actor)
        card_services.activate_by_operations(card, actor)
        click.echo(f"Demo driver's card: {card.visual_number} ({card.contract_id}), active.")
