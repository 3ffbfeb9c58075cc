"""The finance back office over HTTP: roles, the run from preview to finalized, retries, held sessions, credit
notes, invoice search, the accounting exports and the margin report, all on real runs of rated sessions."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.accounts.models import Role
from app.audit.models import AuditEntry
from app.audit.services import Actor
from app.billing.invoicing import invoices
from app.billing.models import (
    HoldStatus,
    Invoice,
    InvoiceKind,
    InvoiceRun,
    PaymentState,
    RunItem,
    RunStatus,
    SessionHold,
)
from app.billing.runs import holds
from app.billing.runs import services as runs
from app.cards import services as card_services
from app.charging.models import Cdr
from app.extensions import db
from app.plans import services as plan_services
from app.rating.models import SessionCharge
from tests.billing.sessions import rated_session
from tests.factories import login, make_user
from tests.helpers import submit_form

FINANCE = Actor.system("test-finance")
OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)
RUNS = "/backoffice/finance/runs"


def _driver(plan: str = "payg", **profile):  # type: ignore[no-untyped-def]
    user = make_user(**profile)
    for stretch in plan_services.history(user.account.id):
        db.session.delete(stretch)
    db.session.flush()
    plan_services.subscribe(
        user.account, plan_services.current_version(plan), FINANCE, at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    )
    card = card_services.issue_app_token(user.account, Actor.of(user))
    return user, card


def _finance(client, role: Role = Role.FINANCE):  # type: ignore[no-untyped-def]
    staff = make_user(role)
    login(client, staff)
    return staff


def _cli_run(app, period: str = "2026-10") -> None:  # type: ignore[no-untyped-def]
    db.session.commit()
    cli = app.test_cli_runner()
    for args in (
        ["run", "--period", period, "--dry-run"],
        ["approve", "--period", period],
        ["run", "--period", period, "--no-deliver"],
    ):
        result = cli.invoke(args=["billing", *args])
        assert result.exit_code == 0, result.output


def _post(client, url: str, data: dict | None = None, form_url: str = RUNS):  # type: ignore[no-untyped-def]
    return submit_form(client, url, data or {}, form_url=form_url)


def _audit(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def _csv(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


# --- access ----------------------------------------------------------------------------------------------------

PAGES = [
    "/backoffice/finance/",
    RUNS,
    "/backoffice/finance/holds",
    "/backoffice/finance/invoices",
    "/backoffice/finance/payments",
    "/backoffice/finance/exports",
    "/backoffice/finance/margin",
    "/backoffice/finance/exports/invoices.csv",
    "/backoffice/finance/margin.csv?from=2026-10",
]


def test_anonymous_is_sent_to_login(client):
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.DRIVER])
def test_support_and_drivers_are_refused(client, role):
    user = make_user(role)
    login(client, user)
    for url in PAGES:
        assert client.get(url).status_code == 403, url
    run = InvoiceRun(period="2026-10", created_by="x")
    db.session.add(run)
    db.session.flush()
    token_page = "/backoffice/support/" if role == Role.SUPPORT else "/profile"
    for url in (RUNS, f"{RUNS}/{run.id}/approve", f"{RUNS}/{run.id}/finalize", "/backoffice/finance/holds/1/release"):
        assert submit_form(client, url, {"period": "2026-10", "reason": "x"}, form_url=token_page).status_code == 403
    assert db.session.get(InvoiceRun, run.id).status == RunStatus.PREVIEW


@pytest.mark.parametrize("role", [Role.FINANCE, Role.ADMIN])
def test_finance_and_admin_get_in(client, role):
    _finance(client, role)
    for url in PAGES:
        assert client.get(url).status_code == 200, url


def test_forms_need_the_csrf_token(client):
    _finance(client)
    assert client.post(RUNS, data={"period": "2026-10"}).status_code == 400
    assert db.session.scalar(select(InvoiceRun)) is None


# --- the run ---------------------------------------------------------------------------------------------------


def test_preview_approve_finalize_through_the_back_office(client):
    payg, payg_card = _driver(full_name="Piet Payg")
    comfort, comfort_card = _driver("comfort", full_name="Carla Comfort")
    rated_session(payg.account.id, payg_card.id, OCT, kwh="20")
    rated_session(payg.account.id, payg_card.id, OCT + dt.timedelta(days=1), kwh="10.5")
    rated_session(comfort.account.id, comfort_card.id, OCT, kwh="30", country="NLD")
    _finance(client)

    bad = _post(client, RUNS, {"period": "october"})
    assert bad.status_code == 400 and "Give a month like 2026-10." in bad.get_data(as_text=True)
    response = _post(client, RUNS, {"period": "2026-10"})
    assert response.status_code == 302
    run = runs.run_for("2026-10")
    assert response.headers["Location"].endswith(f"{RUNS}/{run.id}")
    page = client.get(f"{RUNS}/{run.id}").get_data(as_text=True)
    assert run.preview["accounts"] == 2 and run.preview["sessions"] == 3
    assert "Accounts to invoice" in page and "Approve run" in page and "Finalize run" not in page
    assert "21 %" in page and "Pay as you go (v1)" in page  # per VAT rate and per plan, named

    # Finalizing before approval is refused and changes nothing.
    refused = _post(client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}")
    assert refused.status_code == 302
    assert "Approve the run first" in client.get(f"{RUNS}/{run.id}").get_data(as_text=True)
    assert db.session.get(InvoiceRun, run.id).status == RunStatus.PREVIEW

    _post(client, f"{RUNS}/{run.id}/approve", {"reason": "checked against last month"}, form_url=f"{RUNS}/{run.id}")
    db.session.expire_all()
    assert db.session.get(InvoiceRun, run.id).status == RunStatus.APPROVED
    assert [entry.reason for entry in _audit("billing.run_note")] == ["checked against last month"]
    assert _audit("billing.approve")[0].actor_label.startswith("user")

    _post(client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}")
    db.session.expire_all()
    run = db.session.get(InvoiceRun, run.id)
    assert run.status == RunStatus.FINALIZED and run.results["invoices"] == 2
    page = client.get(f"{RUNS}/{run.id}").get_data(as_text=True)
    assert "The run is finalized." in page and "Every billable session up to 2026-10 is on an invoice" in page
    total = sum(invoice.total_minor for invoice in db.session.scalars(select(Invoice)))
    assert run.results["total_minor"] == total
    listing = client.get(RUNS).get_data(as_text=True)
    assert "2026-10" in listing and "Finalized" in listing and "2 of 2 accounts" in listing


def test_failed_accounts_are_shown_and_retried(client, monkeypatch):
    accounts = [_driver() for _ in range(3)]
    for user, card in accounts:
        rated_session(user.account.id, card.id, OCT)
    _finance(client)
    _post(client, RUNS, {"period": "2026-10"})
    run = runs.run_for("2026-10")
    _post(client, f"{RUNS}/{run.id}/approve", {}, form_url=f"{RUNS}/{run.id}")

    real = invoices.finalize_compositions
    crash_for = accounts[1][0].account.id

    def crashing(compositions, run_id=None):  # type: ignore[no-untyped-def]
        invoiced = real(compositions, run_id)  # numbers taken, invoices inserted: then the crash
        if any(composition.account.id == crash_for for composition in compositions):
            raise RuntimeError("PDF worker killed")
        return invoiced

    monkeypatch.setattr(runs, "finalize_compositions", crashing)
    _post(client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}")
    page = client.get(f"{RUNS}/{run.id}").get_data(as_text=True)
    assert "Failed accounts" in page and "RuntimeError: PDF worker killed" in page and "Retry failed" in page
    assert f"{crash_for:08d}" in page

    monkeypatch.setattr(runs, "finalize_compositions", real)
    _post(client, f"{RUNS}/{run.id}/finalize", {"reason": "worker fixed", "confirm": "y"}, form_url=f"{RUNS}/{run.id}")
    db.session.expire_all()
    assert db.session.get(InvoiceRun, run.id).status == RunStatus.FINALIZED
    assert sorted(invoice.sequence for invoice in db.session.scalars(select(Invoice))) == [1, 2, 3]
    retry = _audit("billing.retry")
    assert len(retry) == 1 and retry[0].reason == "worker fixed" and retry[0].details == {"failed_items": 1}
    assert {item.status for item in db.session.scalars(select(RunItem))} == {"done"}


# --- held sessions ---------------------------------------------------------------------------------------------


def test_hold_decisions_change_what_the_next_run_bills_and_are_audited(client):
    user, card = _driver()
    account_id = user.account.id
    normal = rated_session(account_id, card.id, OCT)
    adjusted = rated_session(account_id, card.id, OCT + dt.timedelta(days=1), kwh="180", hours=2)
    written_off = rated_session(account_id, card.id, OCT + dt.timedelta(days=2), kwh="170", hours=2)
    released = rated_session(account_id, card.id, OCT + dt.timedelta(days=3), kwh="180", hours=2)
    _finance(client)
    _post(client, RUNS, {"period": "2026-10"})
    held = {hold.session_charge_id: hold for hold in db.session.scalars(select(SessionHold))}
    assert set(held) == {adjusted.id, written_off.id, released.id}

    page = client.get("/backoffice/finance/holds").get_data(as_text=True)
    assert "energy 180" in page and "Release" in page and "Write off" in page

    url = "/backoffice/finance/holds/{}/{}"
    hold_page = "/backoffice/finance/holds"
    # Bad input changes nothing: no reason, an amount that is not one, a negative amount.
    _post(client, url.format(held[written_off.id].id, "write_off"), {"reason": " "}, form_url=hold_page)
    assert "needs a reason" in client.get(hold_page).get_data(as_text=True)
    for amount, message in (("abc", "Not an amount"), ("-5", "cannot be negative"), ("12.345", "at most 2 decimals")):
        _post(client, url.format(held[adjusted.id].id, "adjust"), {"amount": amount, "reason": "x"}, form_url=hold_page)
        assert message in client.get(hold_page).get_data(as_text=True)
    db.session.expire_all()
    assert {hold.status for hold in db.session.scalars(select(SessionHold))} == {HoldStatus.HELD}

    _post(
        client,
        url.format(held[adjusted.id].id, "adjust"),
        {"amount": "20,00", "reason": "charger fault"},
        form_url=hold_page,
    )
    _post(
        client,
        url.format(held[written_off.id].id, "write_off"),
        {"reason": "CPO confirmed a test session"},
        form_url=hold_page,
    )
    _post(client, url.format(held[released.id].id, "release"), {"reason": "bus depot, plausible"}, form_url=hold_page)
    # A decided hold cannot be decided again.
    _post(client, url.format(held[released.id].id, "write_off"), {"reason": "again"}, form_url=hold_page)
    db.session.expire_all()
    statuses = {hold.session_charge_id: hold.status for hold in db.session.scalars(select(SessionHold))}
    assert statuses == {
        adjusted.id: HoldStatus.ADJUSTED,
        written_off.id: HoldStatus.WRITTEN_OFF,
        released.id: HoldStatus.RELEASED,
    }
    assert [
        (entry.action, entry.reason)
        for entry in db.session.scalars(
            select(AuditEntry).where(AuditEntry.subject_type == "session_hold").order_by(AuditEntry.id)
        )
    ] == [
        ("billing.hold.adjust", "charger fault"),
        ("billing.hold.write_off", "CPO confirmed a test session"),
        ("billing.hold.release", "bus depot, plausible"),
    ]
    assert _audit("billing.hold.adjust")[0].details["adjusted_incl_vat"] == "20.00"
    assert "No session is waiting for a decision." in client.get(hold_page).get_data(as_text=True)

    run = runs.run_for("2026-10")
    _post(client, f"{RUNS}/{run.id}/preview", {}, form_url=f"{RUNS}/{run.id}")
    _post(client, f"{RUNS}/{run.id}/approve", {}, form_url=f"{RUNS}/{run.id}")
    _post(client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}")
    invoice = db.session.scalar(select(Invoice))
    by_session = {line.session_charge_id: line.amount_minor for line in invoice.lines}
    assert set(by_session) == {normal.id, adjusted.id, released.id}  # the written-off one is not billed
    assert by_session[adjusted.id] == 1653  # 20.00 incl. 21 % VAT → 16.5289 → 16.53
    # Released as rated: CPO 180 × 0.30 + 0.50 = 54.50, ours 180 × 0.05 + 0.35 = 9.35 → 63.85.
    assert by_session[released.id] == 6385
    assert runs.uninvoiced_sessions("2026-10") == []


def test_hold_services_refuse_bad_input(db_session):
    user, card = _driver()
    charge = rated_session(user.account.id, card.id, OCT, kwh="180", hours=2)
    hold = SessionHold(session_charge_id=charge.id, reasons=["energy"])
    db.session.add(hold)
    db.session.flush()
    with pytest.raises(holds.HoldError, match="reason"):
        holds.release(hold, FINANCE, "")
    with pytest.raises(holds.HoldError, match="Not an amount"):
        holds.adjust(hold, FINANCE, "why", "NaN")
    with pytest.raises(holds.HoldError, match="negative"):
        holds.adjust(hold, FINANCE, "why", "-1")
    assert hold.status == HoldStatus.HELD
    holds.adjust(hold, FINANCE, "why", Decimal("0"))
    assert hold.status == HoldStatus.ADJUSTED and hold.decided_by == "test-finance"
    with pytest.raises(holds.HoldError, match="already decided"):
        holds.write_off(hold, FINANCE, "why")


# --- invoices --------------------------------------------------------------------------------------------------


def test_credit_notes_from_the_invoice_page(app, client):
    user, card = _driver(full_name="Greet Goodwill")
    rated_session(user.account.id, card.id, OCT)
    _cli_run(app)
    invoice = db.session.scalar(select(Invoice))
    _finance(client)
    page_url = f"/backoffice/finance/invoices/{invoice.number}"
    page = client.get(page_url).get_data(as_text=True)
    assert "Greet Goodwill" in page and "Gent Zuid, Gent" in page and "Issue credit note" in page

    no_reason = submit_form(
        client,
        f"{page_url}/credit",
        {"scope": "full", "customer_reason": "billing_error", "reason": "", "confirm": "y"},
        form_url=page_url,
    )
    too_much = submit_form(
        client,
        f"{page_url}/credit",
        {"scope": "amount", "amount": "99", "customer_reason": "goodwill", "reason": "x", "confirm": "y"},
        form_url=page_url,
    )
    assert no_reason.status_code == 400 and too_much.status_code == 400
    assert "exceed" in too_much.get_data(as_text=True)
    garbage = submit_form(
        client,
        f"{page_url}/credit",
        {"scope": "amount", "amount": "1.2.3", "customer_reason": "goodwill", "reason": "x", "confirm": "y"},
        form_url=page_url,
    )
    assert garbage.status_code == 400
    assert db.session.scalar(select(Invoice).where(Invoice.kind == InvoiceKind.CREDIT_NOTE)) is None

    response = submit_form(
        client,
        f"{page_url}/credit",
        {
            "scope": "amount",
            "amount": "1.00",
            "customer_reason": "session_price",
            "reason": "late start",
            "confirm": "y",
        },
        form_url=page_url,
    )
    assert response.status_code == 302
    note = db.session.scalar(select(Invoice).where(Invoice.kind == InvoiceKind.CREDIT_NOTE))
    assert response.headers["Location"].endswith(note.number)
    assert note.total_minor == -121 and note.credits_invoice_id == invoice.id
    entry = _audit("invoice.credit_note")[0]
    assert entry.reason == "late start" and entry.actor_label.startswith("user")
    page = client.get(page_url).get_data(as_text=True)
    assert note.number in page
    note_page = client.get(f"/backoffice/finance/invoices/{note.number}").get_data(as_text=True)
    assert invoice.number in note_page and "Issue credit note" not in note_page

    rest = submit_form(
        client,
        f"{page_url}/credit",
        {"scope": "amount", "amount": "6.85", "customer_reason": "goodwill", "reason": "rest", "confirm": "y"},
        form_url=page_url,
    )
    assert rest.status_code == 302  # 1.00 + 6.85 = the whole 7.85 excl. VAT
    assert client.get("/backoffice/finance/invoices/NOPE-1").status_code == 404


def test_invoice_search(app, client):
    ann, ann_card = _driver(full_name="Ann Search", email="ann.search@example.com")
    bob, bob_card = _driver(full_name="Bob Search", email="bob.search@example.com")
    rated_session(ann.account.id, ann_card.id, OCT)
    rated_session(bob.account.id, bob_card.id, OCT)
    _cli_run(app)
    ann_invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == ann.account.id))
    bob_invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == bob.account.id))
    bob_invoice.payment_state = PaymentState.PAID
    _finance(client)

    def found(**query):  # type: ignore[no-untyped-def]
        page = client.get("/backoffice/finance/invoices", query_string=query).get_data(as_text=True)
        return {number for number in (ann_invoice.number, bob_invoice.number) if f">{number}</a>" in page}

    # No search yet: the latest invoiced month is shown, not an empty page.
    assert found() == {ann_invoice.number, bob_invoice.number}
    assert "The latest invoiced month, 2026-10" in client.get("/backoffice/finance/invoices").get_data(as_text=True)
    # A part of the customer's name, in any case.
    assert found(name="nn sear") == {ann_invoice.number}
    assert found(name="SEARCH") == {ann_invoice.number, bob_invoice.number}
    assert found(name="%") == set()  # wildcards are literal
    assert found(name="carla") == set()
    assert found(number=ann_invoice.number) == {ann_invoice.number}
    assert found(number=ann_invoice.number[:4].lower()) == {ann_invoice.number, bob_invoice.number}
    assert found(customer=f"{bob.account.id:08d}") == {bob_invoice.number}
    assert found(customer="not-a-number") == set()
    assert found(email="ANN.SE") == {ann_invoice.number}
    assert found(email="%") == set()  # wildcards are literal
    assert found(period="2026-10") == {ann_invoice.number, bob_invoice.number}
    assert found(period="2026-11") == set()
    assert found(state="paid") == {bob_invoice.number}
    assert found(state="open", period="2026-10") == {ann_invoice.number}
    assert client.get("/backoffice/finance/invoices", query_string={"state": "bogus"}).status_code == 400


def test_failed_payments_page_lists_dunning_state(app, client):
    from app.billing.models import Dunning

    user, card = _driver(full_name="Dora Dunning")
    rated_session(user.account.id, card.id, OCT)
    _cli_run(app)
    invoice = db.session.scalar(select(Invoice))
    invoice.payment_state = PaymentState.FAILED
    db.session.add(Dunning(invoice_id=invoice.id, stage=2, next_attempt_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC)))
    _finance(client)
    page = client.get("/backoffice/finance/payments").get_data(as_text=True)
    assert invoice.number in page and "Dora Dunning" in page and "Failed" in page
    assert ">2</td>" in page


# --- exports ---------------------------------------------------------------------------------------------------


def test_accounting_exports_add_up(app, client):
    payg, payg_card = _driver(full_name="Piet Payg")
    comfort, comfort_card = _driver("comfort", full_name="Carla Comfort")
    rated_session(payg.account.id, payg_card.id, OCT, kwh="20")
    rated_session(payg.account.id, payg_card.id, OCT + dt.timedelta(days=1), kwh="10.5")
    rated_session(comfort.account.id, comfort_card.id, OCT, kwh="30", country="NLD")
    _cli_run(app)
    payg_invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == payg.account.id))
    invoices.credit_invoice(payg_invoice, FINANCE, "goodwill", amount_minor=100)
    _finance(client)
    found = list(db.session.scalars(select(Invoice)))
    assert len(found) == 3

    rows = _csv(client.get("/backoffice/finance/exports/invoices.csv", query_string={"period": "2026-10"}))
    assert {row["number"] for row in rows} == {invoice.number for invoice in found}
    assert sum(Decimal(row["total_incl_vat"]) for row in rows) == Decimal(sum(i.total_minor for i in found)) / 100
    assert sum(Decimal(row["vat"]) for row in rows) == Decimal(sum(i.vat_minor for i in found)) / 100
    payg_row = next(row for row in rows if row["number"] == payg_invoice.number)
    assert payg_row["total_incl_vat"] == "14.98" and payg_row["customer_number"] == f"{payg.account.id:08d}"
    note_row = next(row for row in rows if row["kind"] == "credit_note")
    assert note_row["credits_invoice"] == payg_invoice.number and note_row["total_incl_vat"] == "-1.21"

    lines = _csv(client.get("/backoffice/finance/exports/lines.csv", query_string={"period": "2026-10"}))
    for invoice in found:
        mine = [line for line in lines if line["invoice_number"] == invoice.number]
        assert sum(Decimal(line["amount_excl_vat"]) for line in mine) == Decimal(invoice.subtotal_minor) / 100
    session_lines = [line for line in lines if line["line_kind"] == "session"]
    assert len(session_lines) == 3 and {line["cpo"] for line in session_lines} == {"NL*TCP"}
    assert all(
        Decimal(line["cpo_cost_excl_vat"]) + Decimal(line["fees_excl_vat"]) == Decimal(line["amount_excl_vat"])
        for line in session_lines
    )

    vat = _csv(client.get("/backoffice/finance/exports/vat.csv", query_string={"period": "2026-10"}))
    assert sum(Decimal(row["vat"]) for row in vat) == Decimal(sum(i.vat_minor for i in found)) / 100
    assert sum(Decimal(row["base_excl_vat"]) for row in vat) == Decimal(sum(i.subtotal_minor for i in found)) / 100
    assert {(row["kind"], row["vat_rate"]) for row in vat} == {("invoice", "21"), ("credit_note", "21")}
    invoice_21 = next(row for row in vat if row["kind"] == "invoice")
    assert invoice_21["documents"] == "2"
    page = client.get("/backoffice/finance/exports", query_string={"period": "2026-10"}).get_data(as_text=True)
    assert "VAT per rate, 2026-10" in page and "Credit note" in page
    assert client.get("/backoffice/finance/exports/vat.csv", query_string={"period": "13-2026"}).status_code == 400
    assert _csv(client.get("/backoffice/finance/exports/invoices.csv", query_string={"period": "2026-11"})) == []


def test_margin_report_per_cpo_and_month(client):
    user, card = _driver()
    account_id = user.account.id
    rated_session(account_id, card.id, OCT, kwh="20")  # CPO 6.50, ours 6.50 + 1.00 + 0.35 = 7.85
    rated_session(account_id, card.id, OCT, kwh="10")  # CPO 3.50, ours 3.50 + 0.50 + 0.35 = 4.35
    off = rated_session(account_id, card.id, OCT, kwh="180", hours=2)  # CPO 54.50, written off: earns 0
    other = rated_session(account_id, card.id, OCT, kwh="30")  # CPO 9.50, ours 9.50 + 1.50 + 0.35 = 11.35
    rated_session(account_id, card.id, OCT + dt.timedelta(days=30), kwh="5")  # November: CPO 2.00, ours 2.60
    cdr = db.session.get(Cdr, other.cdr_id)
    cdr.country_code, cdr.party_id = "BE", "ABC"
    hold = SessionHold(session_charge_id=off.id, reasons=["energy"])
    db.session.add(hold)
    db.session.flush()
    holds.write_off(hold, FINANCE, "test session")
    _finance(client)

    response = client.get("/backoffice/finance/margin.csv", query_string={"from": "2026-10", "to": "2026-11"})
    rows = {(row["month"], row["cpo"]): row for row in _csv(response)}
    assert set(rows) == {("2026-10", "NL*TCP"), ("2026-10", "BE*ABC"), ("2026-11", "NL*TCP")}
    tcp = rows[("2026-10", "NL*TCP")]
    assert (tcp["sessions"], tcp["kwh"], tcp["cpo_cost_excl_vat"], tcp["revenue_excl_vat"], tcp["margin"]) == (
        "3",
        "210",
        "64.50",
        "12.20",
        "-52.30",
    )
    assert tcp["written_off_sessions"] == "1"
    abc = rows[("2026-10", "BE*ABC")]
    assert (abc["cpo_cost_excl_vat"], abc["revenue_excl_vat"], abc["margin"], abc["margin_percent"]) == (
        "9.50",
        "11.35",
        "1.85",
        "16.3",
    )
    november = rows[("2026-11", "NL*TCP")]
    assert (november["cpo_cost_excl_vat"], november["revenue_excl_vat"], november["margin"]) == ("2.00", "2.60", "0.60")

    page = client.get("/backoffice/finance/margin", query_string={"from": "2026-10", "to": "2026-10"})
    html = page.get_data(as_text=True)
    assert "BE*ABC" in html and "2026-11" not in html.split("<tbody>")[1]
    assert client.get("/backoffice/finance/margin.csv").status_code == 400
    assert client.get("/backoffice/finance/margin", query_string={"from": "oct"}).status_code == 400
    # The figures really are the sum of the rated sessions.
    total_cpo = sum(charge.cpo_cost_excl_vat for charge in db.session.scalars(select(SessionCharge)))
    assert total_cpo == Decimal("76.00")
