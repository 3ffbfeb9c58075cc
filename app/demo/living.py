"""The living demo of ``make run``: the product with everything in it at once, relative to now.

``flask demo seed`` calls :func:`seed_living_demo` after the users and the demo card. It builds, through the real
services (see ``network.py``, ``people.py``, ``history.py``): the demo CPO with its locations; the demo driver's
second card, months of sessions and invoices (paid, open, credited) and a session charging right now; a few
hundred other drivers with cards and sessions; last month's run finalized with a held session for finance; the
current month accruing. Payments go through Stripe, so it runs only when ``STRIPE_API_BASE`` points at the Stripe
emulator (``make run`` starts it first); otherwise it is skipped with a message and the rest of the seed stands.
Idempotent: each part is found before it is made, so a re-run adds nothing twice.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import stripe
from flask import current_app

from app.accounts.services import find_user_by_email
from app.audit.services import Actor
from app.billing.invoicing.composition import period_bounds
from app.cards.services import cards_of
from app.db import utcnow
from app.demo import history, people
from app.demo.network import demo_cpo
from app.extensions import db
from app.payments.services import PaymentError
from app.payments.stripe_client import stripe_client

OTHER_DRIVERS = 250
INVOICED_OTHERS = 24  # other drivers with sessions last month: last month's run has about this many invoices
DEMO_DRIVER_EMAIL = "driver@example.com"
FINANCE_EMAIL = "finance@example.com"
STRIPE_WAIT_ATTEMPTS = 10


class LivingDemoSkippedError(RuntimeError):
    """The living demo cannot be built here (no Stripe emulator, no demo driver): nothing was changed."""


@dataclass
class LivingReport:
    partner_created: bool = False
    drivers: int = 0
    history: history.HistoryReport = field(default_factory=history.HistoryReport)


def _check_stripe() -> None:
    """Refuse before anything is written unless Stripe is the emulator and answers."""
    base = current_app.config.get("STRIPE_API_BASE")
    if not base:
        raise LivingDemoSkippedError(
            "its payments need the Stripe emulator: set STRIPE_API_BASE (make run starts one and does)"
        )
    for attempt in range(STRIPE_WAIT_ATTEMPTS):
        try:
            stripe_client().v1.customers.list(params={"limit": 1})
            return
        except stripe.APIConnectionError as error:
            # make run starts the emulator a moment before the seed: give it a few seconds to listen.
            if attempt == STRIPE_WAIT_ATTEMPTS - 1:
                raise LivingDemoSkippedError(f"the Stripe emulator at {base} does not answer") from error
            time.sleep(0.5)
        except stripe.StripeError as error:
            raise LivingDemoSkippedError(f"the Stripe emulator at {base} refused: {error}") from error


def seed_living_demo(now: dt.datetime | None = None, *, drivers: int | None = None) -> LivingReport:
    """Build what is missing of the living demo (commits as it goes, as the run driver does). Raises
    :class:`LivingDemoSkippedError` before writing anything when it cannot be built here."""
    now = now or utcnow()
    drivers = OTHER_DRIVERS if drivers is None else drivers
    demo_user = find_user_by_email(DEMO_DRIVER_EMAIL)
    finance = find_user_by_email(FINANCE_EMAIL)
    if demo_user is None or demo_user.account is None or finance is None:
        raise LivingDemoSkippedError("the demo driver or the finance user is missing")
    _check_stripe()
    report = LivingReport()
    # Customers and prices from before the oldest demo month on: the history happened under them.
    since, _end = period_bounds(history.month_of(now, 4))

    partner, report.partner_created = demo_cpo(since)
    account = demo_user.account
    people.backdate_plan(account.id, since)
    first_card = cards_of(account.id)[-1]  # the seed's "Demo card" (oldest)
    second = people.second_card(account)
    others = people.other_drivers(drivers, since)
    report.drivers = len(others)
    db.session.commit()

    try:
        people.save_test_card(account)  # the demo driver pays by card: the runs collect it
        for other in others[: history_invoiced(drivers)]:
            people.save_test_card(other)
    except PaymentError as error:
        db.session.rollback()
        raise LivingDemoSkippedError(f"Stripe refused a payment method: {error}") from error
    db.session.commit()

    other_cards = [(other, cards_of(other.id)[0]) for other in others]
    sessions = history.plan_sessions(now, [first_card, second], other_cards, invoiced_others=history_invoiced(drivers))
    report.history.sessions_stored = history.store_sessions(partner, sessions)
    report.history.live_session = history.live_session(partner, second, now)
    db.session.commit()
    history.rate(report.history)

    actor = Actor.of(finance)
    for back in (3, 2, 1):
        period = history.month_of(now, back)
        report.history.runs[period] = history.run_month(period, actor, deliver=back > 1)
        if back == 3:
            credited = history.invoice_of(account.id, period)
            if credited is not None:
                report.history.credit_note = history.credit_once(credited, actor)
    return report


def history_invoiced(drivers: int) -> int:
    return min(INVOICED_OTHERS, drivers)
