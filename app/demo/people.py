"""The demo's customers: the demo driver's second card, a few hundred other drivers with a card each, their plans
dated back to before the demo's history, and saved cards at the Stripe emulator for those who get an invoice.

Everything goes through the services real customers go through (``create_user``, ``order_card`` → ``ship_card``
→ ``activate_by_operations``, a SetupIntent confirmed at Stripe and recorded), so the audit log, token updates and
eMAIDs are as in production. Two things are demo-only, each said where it is done: plans start months back
(the demo's history happened before it was seeded), and the other drivers' random passwords are hashed cheaply.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import select

from app.accounts import services as accounts
from app.accounts.models import Account, Role, User
from app.audit.services import Actor
from app.cards import services as cards
from app.cards import stock
from app.cards.models import Card
from app.extensions import db
from app.payments import services as payments
from app.payments.stripe_client import stripe_client
from app.plans.services import history

ACTOR_LABEL = "demo-seed"
OTHER_DRIVER_EMAIL = "demo-driver-{:04d}@example.com"
STOCK_BATCH = "demo-drivers"
TEST_CARD = "pm_card_visa"  # Stripe's (and localstripe's) test card that always pays

FIRST_NAMES = ("Lotte", "Ruben", "Noor", "Arne", "Fien", "Jonas", "Marie", "Lucas", "Elise", "Thomas", "Sara",
               "Wout", "Camille", "Hugo", "Julie", "Bram", "Manon", "Louis", "Emma", "Daan")  # fmt: skip
LAST_NAMES = ("Janssens", "Maes", "Claes", "Wouters", "De Smet", "Dubois", "Lambert", "Mertens",
              "Peeters", "Willems", "Goossens", "Jacobs", "Dupont", "Vermeulen", "De Vries", "Bakker", "Visser",
              "Smit")  # fmt: skip
PLACES = (
    ("2000", "Antwerpen", "BE", "nl"),
    ("9000", "Gent", "BE", "nl"),
    ("1000", "Brussel", "BE", "fr"),
    ("3000", "Leuven", "BE", "nl"),
    ("4000", "Liège", "BE", "fr"),
    ("2800", "Mechelen", "BE", "nl"),
    ("5000", "Namur", "BE", "fr"),
    ("3511 LX", "Utrecht", "NL", "nl"),
    ("8000", "Brugge", "BE", "nl"),
)
STREETS = ("Kerkstraat", "Stationsstraat", "Rue de la Gare", "Dorpsstraat", "Molenstraat", "Rue du Marché")


@contextmanager
def _cheap_password_hashes() -> Iterator[None]:
    """The other demo drivers get a random 32-character password nobody is told: its ~190 bits make the argon2
    cost irrelevant, and the house cost (64 MiB, 3 passes) would spend about 30 s of ``make run`` on hundreds
    of passwords no one can type. A login would rehash with the configured cost (``needs_rehash``)."""
    config = current_app.config
    saved = {name: config[name] for name in ("ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM")}
    config.update(ARGON2_TIME_COST=1, ARGON2_MEMORY_COST=1024, ARGON2_PARALLELISM=1)
    try:
        yield
    finally:
        config.update(saved)


def backdate_plan(account_id: int, since: dt.datetime) -> None:
    """Make the account's first plan start at ``since`` when it started later: the demo's sessions of the
    months before it was seeded were charged under it (a real customer's plan simply started back then)."""
    subscriptions = history(account_id)
    if subscriptions and subscriptions[0].starts_at > since:
        subscriptions[0].starts_at = since


def issue_card(account: Account, label: str) -> Card:
    """Order, ship (a stock card, its eMAID) and activate a card, as operations do for a fleet roll-out."""
    actor = Actor.system(ACTOR_LABEL)
    card = cards.order_card(account, actor, label=label)
    cards.ship_card(card, actor)
    cards.activate_by_operations(card, actor)
    return card


def ensure_stock(needed: int) -> None:
    """Enough unassigned stock cards for ``needed`` more cards (a second batch of demo stock, once)."""
    levels = stock.stock_levels()
    if levels.available >= needed:
        return
    first = 0x5000 + levels.available + levels.assigned
    rows = [(n, f"04DF{first + n:04X}", f"VLT-DEMO-{first + n:05d}") for n in range(1, needed - levels.available + 1)]
    stock.import_stock(rows, batch=STOCK_BATCH)


def second_card(account: Account) -> Card:
    """The demo driver's second card (the first is the seed's "Demo card")."""
    owned = cards.cards_of(account.id)
    if len(owned) >= 2:
        return owned[0]  # newest first
    ensure_stock(1)
    return issue_card(account, "Company car")


def other_drivers(count: int, since: dt.datetime, seed: int = 17) -> list[Account]:
    """``count`` other drivers (created when missing, same names on every run), each with one active card and
    a plan since ``since``. Flushes."""
    rng = random.Random(seed)  # noqa: S311 (demo names, not secrets)
    emails = [OTHER_DRIVER_EMAIL.format(n) for n in range(1, count + 1)]
    existing = {
        user.email: user
        for user in db.session.scalars(select(User).where(User.email.in_(emails), User.account_id.isnot(None)))
    }
    missing = [email for email in emails if email not in existing]
    if missing:
        ensure_stock(len(missing))
    accounts_by_email: dict[str, Account] = {}
    with _cheap_password_hashes():
        for email in emails:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            postal_code, city, country, language = rng.choice(PLACES)
            street = f"{rng.choice(STREETS)} {rng.randint(1, 180)}"
            user = existing.get(email)
            if user is None:
                profile = accounts.DriverProfile(f"{first} {last}", street, postal_code, city, country, language)
                user = accounts.create_user(
                    email, secrets.token_urlsafe(24), Role.DRIVER, profile=profile, actor_label=ACTOR_LABEL
                )
                assert user.account is not None
                issue_card(user.account, "Car")
                backdate_plan(user.account.id, since)
            assert user.account is not None  # selected with an account
            accounts_by_email[email] = user.account
    db.session.flush()
    return [accounts_by_email[email] for email in emails]


def save_test_card(account: Account) -> bool:
    """A card saved for off-session payments, the way the browser does it with Stripe.js: a SetupIntent confirmed
    at Stripe (here with Stripe's test card, server-side) and recorded. False when the account already has one.
    Raises ``payments.PaymentError`` when Stripe cannot be reached."""
    if payments.active_payment_method(account.id) is not None:
        return False
    info = payments.create_setup_intent(account, "card")
    stripe_client().v1.setup_intents.confirm(info.id, params={"payment_method": TEST_CARD})
    payments.record_setup_intent_result(account, info.id)
    return True
