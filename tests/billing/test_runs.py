"""The monthly run end to end on the database: preview, approve, finalize, numbering, resume, late CDRs,
held sessions, credit notes, and the JSON the operations scripts read."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.audit.services import Actor
from app.billing.invoicing import invoices
from app.billing.invoicing.numbering import take_number
from app.billing.models import HoldStatus, Invoice, InvoiceLine, InvoiceRun, RunItem, RunStatus, SessionHold
from app.billing.runs import services as runs
from app.cards import services as card_services
from app.extensions import db
from app.plans import services as plan_services
from tests.billing.sessions import rated_session
from tests.factories import make_user

FINANCE = Actor.system("test-finance")
OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)


def _driver(plan: str = "payg", **profile):  # type: ignore[no-untyped-def]
    user = make_user(**profile)
    for stretch in plan_services.history(user.account.id):
        db.session.delete(stretch)
    db.session.flush()
    plan_services.subscribe(
        user.account, plan_services.current_version(plan), FINANCE, at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    )
    card = card_services.issue_app_token(user.account, Actor.of(user))
    return user.account, card


def _run(app, period: str = "2026-10"):  # type: ignore[no-untyped-def]
    cli = app.test_cli_runner()
    preview = cli.invoke(args=["billing", "run", "--period", period, "--dry-run"])
    assert preview.exit_code == 0, preview.output
    approve = cli.invoke(args=["billing", "approve", "--period", period])
    assert approve.exit_code == 0, approve.output
    final = cli.invoke(args=["billing", "run", "--period", period, "--no-deliver"])
    assert final.exit_code == 0, final.output
    return json.loads(preview.output), final


def test_month_run_makes_one_legal_invoice_per_account(app, db_session):
    payg, payg_card = _driver("payg", full_name="Piet Payg")
    comfort, comfort_card = _driver("comfort", full_name="Carla Comfort")
    _driver("payg", full_name="Ida Idle")  # nothing to bill: no invoice
    rated_session(payg.id, payg_card.id, OCT, kwh="20")
    rated_session(payg.id, payg_card.id, OCT + dt.timedelta(days=1), kwh="10.5")
    rated_session(comfort.id, comfort_card.id, OCT, kwh="30", country="NLD")
    db.session.commit()

    preview, final = _run(app)
    assert preview["preview"]["accounts"] == 2 and preview["preview"]["sessions"] == 3
    assert "invoicing 2026-10" in final.output

    found = db.session.scalars(select(Invoice).order_by(Invoice.sequence)).all()
    assert [invoice.number for invoice in found] == [
        f"INV-{found[0].issue_date.year}-000001",
        f"INV-{found[0].issue_date.year}-000002",
    ]
    payg_invoice = next(invoice for invoice in found if invoice.account_id == payg.id)
    # Session 1: CPO 20 × 0.30 + 0.50 = 6.50; ours 20 × 0.05 + 0.35 = 1.35 → 7.85.
    # Session 2: CPO 10.5 × 0.30 + 0.50 = 3.65; ours 0.525 + 0.35 = 0.875 → 4.525 → 4.53 (half up).
    amounts = [line.amount_minor for line in payg_invoice.lines]
    assert amounts == [785, 453]
    assert payg_invoice.subtotal_minor == 1238
    assert payg_invoice.vat_breakdown == [
        {"rate": "21", "category": "S", "country": "BE", "base": 1238, "vat": 260}  # 259.98
    ]
    assert payg_invoice.total_minor == 1498

    comfort_invoice = next(invoice for invoice in found if invoice.account_id == comfort.id)
    kinds = [line.kind.value for line in comfort_invoice.lines]
    assert kinds == ["subscription", "session"]
    assert comfort_invoice.lines[0].amount_minor == 499  # full month of Comfort

    snapshot = payg_invoice.snapshot
    assert snapshot["buyer"]["name"] == "Piet Payg" and snapshot["seller"]["vat_number"]
    assert snapshot["period"] == {"month": "2026-10", "start": "2026-10-01", "end": "2026-10-31"}
    assert snapshot["lines"][0]["session"]["evse_id"] == "BE*BEC*E041503003"
    assert snapshot["lines"][0]["cpo_cost"] + snapshot["lines"][0]["fees"] == snapshot["lines"][0]["amount"]
    run = runs.run_for("2026-10")
    assert run.status == RunStatus.FINALIZED and run.results["invoices"] == 2
    assert run.results["uninvoiced_sessions"] == 0
    assert runs.uninvoiced_sessions("2026-10") == []

    listing = json.loads(app.test_cli_runner().invoke(args=["billing", "list", "--period", "2026-10", "--json"]).output)
    assert {entry["number"] for entry in listing} == {invoice.number for invoice in found}
    shown = json.loads(app.test_cli_runner().invoke(args=["billing", "show", payg_invoice.number, "--json"]).output)
    assert shown["totals"]["total"] == 1498 and shown["payment_state"] == "open"
    assert [line["kwh"] for line in (entry["session"] for entry in shown["lines"])] == ["20.0000", "10.5000"]


def test_rerun_and_resume_never_duplicate_or_leave_gaps(app, db_session, monkeypatch):
    accounts = [_driver() for _ in range(3)]
    for account, card in accounts:
        rated_session(account.id, card.id, OCT)
    db.session.commit()
    cli = app.test_cli_runner()
    cli.invoke(args=["billing", "run", "--period", "2026-10", "--dry-run"])
    cli.invoke(args=["billing", "approve", "--period", "2026-10"])

    # The second account's unit of work crashes half-way (after its number was taken): it rolls back whole.
    real = invoices.finalize_compositions
    crash_for = accounts[1][0].id

    def crashing(compositions, run_id=None):  # type: ignore[no-untyped-def]
        invoiced = real(compositions, run_id)  # numbers taken, invoices inserted: then the crash
        if any(composition.account.id == crash_for for composition in compositions):
            raise RuntimeError("worker killed")
        return invoiced

    monkeypatch.setattr(runs, "finalize_compositions", crashing)
    cli.invoke(args=["billing", "run", "--period", "2026-10", "--no-deliver"])
    items = db.session.scalars(select(RunItem).order_by(RunItem.account_id)).all()
    assert [item.status for item in items] == ["done", "failed", "done"]
    assert runs.run_for("2026-10").status == RunStatus.FINALIZING

    monkeypatch.setattr(runs, "finalize_compositions", real)
    resumed = cli.invoke(args=["billing", "run", "--period", "2026-10", "--no-deliver"])
    assert resumed.exit_code == 0, resumed.output
    numbers = sorted(invoice.sequence for invoice in db.session.scalars(select(Invoice)))
    assert numbers == [1, 2, 3]  # gapless although the crashed account had taken number 2 once
    assert db.session.scalar(select(db.func.count(Invoice.id))) == 3
    again = cli.invoke(args=["billing", "run", "--period", "2026-10", "--no-deliver"])
    assert "already finalized" in again.output
    assert db.session.scalar(select(db.func.count(Invoice.id))) == 3


def test_a_session_can_be_on_one_invoice_only(app, db_session):
    account, card = _driver()
    charge = rated_session(account.id, card.id, OCT)
    db.session.commit()
    _run(app)
    invoice = db.session.scalar(select(Invoice))
    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.add(
            InvoiceLine(
                invoice_id=invoice.id,
                position=99,
                kind="session",
                session_charge_id=charge.id,
                description="again",
                amount_minor=1,
                vat_rate=Decimal(21),
            )
        )
        db.session.flush()


def test_late_cdr_goes_on_the_next_invoice(app, db_session):
    account, card = _driver()
    rated_session(account.id, card.id, OCT)
    db.session.commit()
    _run(app, "2026-10")
    late = rated_session(account.id, card.id, OCT + dt.timedelta(days=5))  # arrives after October was invoiced
    db.session.commit()
    assert runs.uninvoiced_sessions("2026-10") == [late.id]
    _run(app, "2026-11")
    november = db.session.scalar(select(Invoice).where(Invoice.period == "2026-11"))
    assert [line.session_charge_id for line in november.lines] == [late.id]


def test_outliers_are_held_then_released_by_finance(app, db_session):
    account, card = _driver()
    normal = rated_session(account.id, card.id, OCT)
    huge = rated_session(account.id, card.id, OCT + dt.timedelta(days=2), kwh="180", hours=2)
    db.session.commit()
    preview, _final = _run(app)
    assert preview["preview"]["held_sessions"] == 1
    invoice = db.session.scalar(select(Invoice))
    assert [line.session_charge_id for line in invoice.lines] == [normal.id]
    hold = db.session.scalar(select(SessionHold))
    assert hold.session_charge_id == huge.id and "energy 180" in hold.reasons[0]
    assert runs.uninvoiced_sessions("2026-10") == []  # held is not "lost"

    hold.status = HoldStatus.RELEASED
    db.session.commit()
    _run(app, "2026-11")
    november = db.session.scalar(select(Invoice).where(Invoice.period == "2026-11"))
    assert [line.session_charge_id for line in november.lines] == [huge.id]


def test_every_outlier_limit_holds_its_session_in_sql_and_in_the_reasons(app, db_session):
    """Each limit on its own (the SQL filter finds the candidates, outlier_reasons says why): the run holds
    exactly the sessions beyond one limit and bills the one just within all of them."""
    account, card = _driver()
    expensive = {
        "country_code": "NL",
        "party_id": "TCP",
        "id": "T-EXP",
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 1.50, "vat": 21.0, "step_size": 1}]}],
        "last_updated": "2026-01-01T00:00:00Z",
    }
    within = rated_session(account.id, card.id, OCT, kwh="149", hours=1)  # 149 kW, 1 h, about 55 EUR
    sessions = {
        "average power 400 kW over 350 kW": rated_session(
            account.id, card.id, OCT + dt.timedelta(days=1), kwh="100", hours=0.25
        ),
        "duration 50.0 h over 48 h": rated_session(account.id, card.id, OCT + dt.timedelta(days=2), kwh="20", hours=50),
        "over 150": rated_session(
            account.id, card.id, OCT + dt.timedelta(days=3), kwh="100", hours=2, tariff=expensive
        ),
    }
    assert sessions["over 150"].driver_incl_vat > 150
    db.session.commit()

    preview, _final = _run(app)

    assert preview["preview"]["held_sessions"] == 3
    holds = {hold.session_charge_id: hold.reasons for hold in db.session.scalars(select(SessionHold))}
    for expected, charge in sessions.items():
        assert len(holds[charge.id]) == 1 and expected in holds[charge.id][0], (expected, holds[charge.id])
    invoice = db.session.scalar(select(Invoice))
    assert [line.session_charge_id for line in invoice.lines if line.session_charge_id] == [within.id]


def test_cdrs_that_cannot_be_priced_are_reported_as_on_no_invoice(app, client, db_session):
    """A Swiss CPO's CDR in CHF for a driver whose plan is in EUR cannot be priced: it is on no invoice, and the
    check after the run says so instead of reporting every session invoiced."""
    from app.charging.models import Cdr

    account, card = _driver()
    rated_session(account.id, card.id, OCT)
    start, end = OCT + dt.timedelta(days=1), OCT + dt.timedelta(days=1, hours=1)
    chf = {
        "country_code": "CH",
        "party_id": "SWI",
        "id": "T-CHF",
        "currency": "CHF",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.55, "vat": 8.1, "step_size": 1}]}],
        "last_updated": "2026-01-01T00:00:00Z",
    }
    db.session.add(
        Cdr(
            country_code="CH",
            party_id="SWI",
            ocpi_id="CDR-CHF-1",
            card_id=card.id,
            account_id=account.id,
            token_uid=card.uid,
            start_date_time=start,
            end_date_time=end,
            location_ocpi_id="ZH1",
            evse_uid="E1",
            country="CHE",
            currency="CHF",
            total_energy=Decimal(10),
            total_time=Decimal(1),
            total_cost_excl_vat=Decimal("5.50"),
            last_updated=end,
            data={
                "start_date_time": start.isoformat(),
                "end_date_time": end.isoformat(),
                "currency": "CHF",
                "charging_periods": [
                    {"start_date_time": start.isoformat(), "dimensions": [{"type": "ENERGY", "volume": 10}]}
                ],
                "tariffs": [chf],
                "total_cost": {"excl_vat": 5.5},
                "total_energy": 10,
                "total_time": 1,
            },
        )
    )
    db.session.commit()

    preview, _final = _run(app)

    assert any("CDR-CHF-1" in problem for problem in preview["preview"]["not_rated"])
    assert runs.uninvoiced_sessions("2026-10") == []  # every *rated* session is invoiced ...
    assert runs.unrated_cdrs("2026-10") == ["CDR-CHF-1"]  # ... but this CDR is on no invoice
    check = app.test_cli_runner().invoke(args=["billing", "uninvoiced", "--period", "2026-10"])
    assert check.exit_code == 1 and json.loads(check.output)["unrated_cdr_ids"] == ["CDR-CHF-1"]
    from tests.billing.test_finance_backoffice import _finance

    _finance(client)
    page = client.get(f"/backoffice/finance/runs/{runs.run_for('2026-10').id}").get_data(as_text=True)
    assert "could not be priced" in page and "CDR-CHF-1" in page


def test_credit_notes_have_their_own_series_and_reference(app, db_session):
    account, card = _driver()
    rated_session(account.id, card.id, OCT)
    db.session.commit()
    _run(app)
    invoice = db.session.scalar(select(Invoice))
    partial = invoices.credit_invoice(invoice, FINANCE, "goodwill", amount_minor=100)
    assert partial.number.startswith("CN-") and partial.number.endswith("-000001")
    assert partial.subtotal_minor == -100 and partial.vat_minor == -21 and partial.total_minor == -121
    assert partial.snapshot["credits_invoice"]["number"] == invoice.number
    with pytest.raises(invoices.BillingError, match="exceed"):
        invoices.credit_invoice(invoice, FINANCE, "too much", amount_minor=invoice.subtotal_minor)
    with pytest.raises(invoices.BillingError, match="reason"):
        invoices.credit_invoice(invoice, FINANCE, " ", amount_minor=1)


def test_numbers_given_back_on_rollback(db_session):
    with db.session.begin_nested() as savepoint:
        assert take_number("INV-2099")[1] == "INV-2099-000001"
        savepoint.rollback()
    assert take_number("INV-2099") == (1, "INV-2099-000001")
    assert take_number("INV-2099") == (2, "INV-2099-000002")


def test_run_refuses_bad_periods_and_out_of_order_steps(app, db_session):
    cli = app.test_cli_runner()
    assert cli.invoke(args=["billing", "run", "--period", "october"]).exit_code == 1
    assert "approve it first" in cli.invoke(args=["billing", "run", "--period", "2026-10", "--no-deliver"]).output
    assert "no preview" in cli.invoke(args=["billing", "approve", "--period", "2026-10"]).output
    cli.invoke(args=["billing", "run", "--period", "2026-10", "--dry-run"])
    assert "Approve the run first" in cli.invoke(args=["billing", "run", "--period", "2026-10", "--no-deliver"]).output
    assert db.session.scalar(select(InvoiceRun)).status == RunStatus.PREVIEW
