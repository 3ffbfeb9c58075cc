"""``flask demo seed``: demo users for the embedded set-up. Re-running keeps what exists."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask.cli import AppGroup

from app.accounts import services
from app.accounts.models import Role
from app.demo.generate_cli import generate_command
from app.extensions import db
from app.plans.services import seed_default_plans

demo_cli = AppGroup("demo", help="Demo data.")
demo_cli.add_command(generate_command)

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
    ("operations@example.com", Role.OPERATIONS),
    ("admin@example.com", Role.ADMIN),
]


@demo_cli.command("seed")
@click.option(
    "--charge-points",
    "charge_points",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A folder with OCPI locations.json.gz and tariffs.json.gz to import (make run: the shared Dutch data).",
)
def seed_command(charge_points: Path | None) -> None:
    """Create the demo driver, support, finance, operations and admin users, then the living demo (a demo CPO,
    months of sessions and invoices, other drivers, a session charging now; needs the Stripe emulator); with
    --charge-points, import charge points for the map and a demo hub that relays them. Idempotent."""
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
        click.echo(f"  {email:<24} {DEMO_PASSWORD:<18} {role.value:<10} ({state})")
    _seed_cards()
    db.session.commit()
    _seed_living_demo()
    if charge_points is not None:
        _seed_charge_points(charge_points)


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


def _seed_living_demo() -> None:
    """The demo CPO, months of sessions and invoices, hundreds of drivers, a session charging now
    (app/demo/living.py); skipped with a message when it cannot be built here (no Stripe emulator)."""
    from app.demo.living import LivingDemoSkippedError, seed_living_demo

    started = time.monotonic()
    try:
        report = seed_living_demo()
    except LivingDemoSkippedError as exc:
        click.echo(f"Living demo: skipped ({exc}).")
        return
    partner = "registered" if report.partner_created else "exists"
    made = report.history
    click.echo(f"Living demo ({time.monotonic() - started:.1f} s): demo CPO {partner}; {report.drivers} other drivers")
    click.echo(f"  sessions: {made.sessions_stored} stored, {made.rated} rated; charging now: {made.live_session}")
    for problem in made.rating_problems:
        click.echo(f"  not rated: {problem}")
    for period, done in made.runs.items():
        click.echo(f"  run {period}: {done}")
    if made.credit_note:
        click.echo(f"  credit note {made.credit_note} on the oldest month's invoice of driver@example.com")


def _seed_charge_points(folder: Path) -> None:
    """The map's charge points (app/demo/charge_points.py); a missing folder is skipped with a message."""
    from app.demo.charge_points import ChargePointFilesMissingError, charge_point_files, import_charge_points

    try:
        charge_point_files(folder)
    except ChargePointFilesMissingError as exc:
        click.echo(f"Charge points: skipped ({exc}); the map starts empty.")
        return
    click.echo(f"Charge points: importing {folder} (a re-run updates, never duplicates) ...")
    report = import_charge_points(folder)
    for kind, result in (("tariffs", report.tariffs), ("locations", report.locations)):
        click.echo(
            f"  {kind}: {result.total} read, {result.stored} stored, {result.stale} older than stored, "
            f"{result.failed} skipped as invalid"
        )
    hub = "registered" if report.hub_created else "exists"
    click.echo(f"  demo hub: {hub}, {len(report.parties_added)} parties added as CONNECTED")
    for country_code, party_id, holder in report.parties_refused:
        click.echo(f"  party {country_code}/{party_id} left to {holder}")
