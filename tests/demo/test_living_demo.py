"""``flask demo seed`` builds the living demo of ``make run`` (app/demo/living.py) through the real services: run
twice on a fresh database, each part exists exactly once, and the driver's and finance's pages show them.

Payments go to the Stripe emulator (localstripe), as under ``make run``. A dozen other drivers stand in for the
few hundred of ``make run`` (``OTHER_DRIVERS``): the same code, a smaller count; the demo CPO's own five locations
replace the shared Dutch file, whose import is tested in tests/finder/test_demo_charge_points.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.accounts.models import User
from app.billing.models import Invoice, InvoiceKind, Payment, PaymentState, RunStatus
from app.billing.runs.holds import held_queue
from app.billing.runs.services import run_for
from app.cards.services import cards_of
from app.charging.models import Cdr, ChargingSession
from app.db import utcnow
from app.demo import living
from app.demo.cli import DEMO_PASSWORD
from app.demo.history import OUTLIER_KWH, month_of
from app.extensions import db
from app.money import round_to_minor_units
from app.rating.live_cost import live_costs_of
from app.rating.models import SessionCharge
from app.roaming.models import Partner
from tests.factories import login
from tests.payments.emulator import LocalStripe, localstripe, point_app_at, restore_app

__all__ = ["localstripe"]

OTHER_DRIVERS = 12


@pytest.fixture
def demo_app(app: Flask, localstripe: LocalStripe, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    previous = point_app_at(app, localstripe)
    monkeypatch.setattr(living, "OTHER_DRIVERS", OTHER_DRIVERS)
    yield app
    restore_app(app, previous)


def _counts() -> dict[str, int]:
    tables = {"users": User, "partners": Partner, "sessions": ChargingSession, "cdrs": Cdr, "charges": SessionCharge,
              "invoices": Invoice, "payments": Payment}  # fmt: skip
    return {name: db.session.scalar(select(func.count()).select_from(model)) or 0 for name, model in tables.items()}


def _seed(app: Flask) -> str:
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert "Living demo (" in result.output, result.output  # built, not skipped
    return result.output


def test_seeding_twice_builds_each_part_once_and_the_pages_show_them(demo_app, client, db_session):
    first = _seed(demo_app)
    assert "sessions: 0 stored" not in first
    after_first = _counts()
    second = _seed(demo_app)
    assert "sessions: 0 stored, 0 rated" in second and second.count("finalized before") == 3
    assert _counts() == after_first  # nothing twice

    now = utcnow()
    driver = db.session.scalar(select(User).where(User.email == "driver@example.com"))
    account_id = driver.account_id
    assert len(cards_of(account_id)) == 2
    # The demo driver's months: M-3 paid and credited, M-2 paid, M-1 open (its run's delivery left to finance).
    mine = db.session.scalars(select(Invoice).where(Invoice.account_id == account_id)).all()
    invoices = {invoice.period: invoice for invoice in mine if invoice.kind == InvoiceKind.INVOICE}
    notes = [invoice for invoice in mine if invoice.kind == InvoiceKind.CREDIT_NOTE]
    oldest, paid, open_ = (invoices.pop(month_of(now, back)) for back in (3, 2, 1))
    assert not invoices  # no invoice for the month still running
    assert [note.credits_invoice_id for note in notes] == [oldest.id]
    assert notes[0].snapshot["credit_reason"] == "session_price"
    assert paid.payment_state == PaymentState.PAID and paid.total_minor > 0
    assert open_.payment_state == PaymentState.OPEN and open_.total_minor > 0
    refunds = db.session.scalars(select(Payment).where(Payment.invoice_id == notes[0].id)).all()
    assert [(refund.kind, refund.status) for refund in refunds] == [("refund", "succeeded")]

    # A session charging right now, with its cost so far; the current month's sessions rated, not invoiced.
    (live,) = live_costs_of(account_id, now)
    assert live.status == "ACTIVE" and live.kwh > 0 and live.cost is not None and live.cost.price.incl_vat > 0
    accruing = db.session.scalar(
        select(func.count()).select_from(SessionCharge).join(Cdr, Cdr.id == SessionCharge.cdr_id)
        .where(Cdr.start_date_time >= _month_start(now))
    )  # fmt: skip
    assert accruing > OTHER_DRIVERS  # every other driver charged this month (1 or 2 sessions each)

    # Last month's run finalized; one outlier session waits for finance.
    last = run_for(month_of(now, 1))
    last_invoices = db.session.scalar(select(func.count()).select_from(Invoice).where(Invoice.period == last.period))
    assert last.status == RunStatus.FINALIZED and last.accounts_total == last_invoices >= OTHER_DRIVERS
    ((hold, charge, cdr),) = held_queue()
    assert charge.kwh == OUTLIER_KWH and "energy" in hold.reasons[0]

    # The pages: the driver's dashboard (live cost), invoices (all four documents); finance's holds and runs.
    login(client, driver, DEMO_PASSWORD)
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert 'id="charging-now"' in dashboard and "Kunstberg" in dashboard
    cents = round_to_minor_units(live.cost.price.incl_vat, 2)
    assert f"{cents // 100},{cents % 100:02d}" in dashboard or f"{cents // 100}.{cents % 100:02d}" in dashboard
    listing = client.get("/invoices").get_data(as_text=True)
    for document in (oldest, paid, open_, notes[0]):
        assert document.number in listing
    finance = db.session.scalar(select(User).where(User.email == "finance@example.com"))
    with demo_app.test_client() as staff:
        login(staff, finance, DEMO_PASSWORD)
        holds = staff.get("/backoffice/finance/holds").get_data(as_text=True)
        runs = staff.get("/backoffice/finance/runs").get_data(as_text=True)
    assert cdr.ocpi_id in holds and "212" in holds
    assert all(month_of(now, back) in runs for back in (3, 2, 1))


def _month_start(now):  # type: ignore[no-untyped-def]
    from app.billing.invoicing.composition import period_bounds

    return period_bounds(month_of(now, 0))[0]


def test_without_the_stripe_emulator_the_living_demo_is_skipped_and_nothing_is_written(app, db_session):
    app.config["STRIPE_API_BASE"] = None
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert "Living demo: skipped (its payments need the Stripe emulator" in result.output
    assert db.session.scalar(select(func.count()).select_from(Cdr)) == 0
    assert db.session.scalar(select(func.count()).select_from(Partner)) == 0
