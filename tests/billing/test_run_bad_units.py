"""A batch fails one unit and goes on (DESIGN.md §5): poisoned data stored before intake bounded it — a CDR whose
volume is 1e30, one at the columns' maximum, one whose JSON holds a NUL, a session whose figures no invoice can
carry — never stops rating or the invoice run for everybody. The bad unit fails alone, with why, and is shown;
the others are rated and invoiced with gapless numbers; a retry after the data is fixed finishes the job.

The data is stored directly (ORM or SQL), bypassing OCPI intake, as it could have been before intake refused it.
Every test runs on SQLite and on PostgreSQL (``TEST_DATABASE_URL``), whose numbers behave differently: SQLite
stores 1e30 in a Numeric(14, 4) column, PostgreSQL refuses it (numeric field overflow) but stores ``NaN``.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text, update

from app.audit.services import Actor
from app.billing.invoicing import composition
from app.billing.invoicing.outliers import outlier_reasons
from app.billing.models import Invoice, InvoiceRun, RunItem, RunStatus, SessionHold
from app.billing.runs import holds, tasks
from app.billing.runs import services as runs
from app.cards import services as card_services
from app.charging.models import Cdr
from app.extensions import db
from app.failures import failure_reason
from app.plans import services as plan_services
from app.rating import pending
from app.rating import services as rating
from app.rating.models import RatingProblem, SessionCharge
from tests.billing.sessions import TARIFF, rated_session
from tests.factories import make_user

FINANCE = Actor.system("test-finance")
OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)
COLUMN_MAX = Decimal("9999999999.9999")  # the largest value Numeric(14, 4) holds (kWh, prices)


def _postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _driver():  # type: ignore[no-untyped-def]
    user = make_user()
    for stretch in plan_services.history(user.account.id):
        db.session.delete(stretch)
    db.session.flush()
    plan_services.subscribe(
        user.account, plan_services.current_version("payg"), FINANCE, at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    )
    card = card_services.issue_app_token(user.account, Actor.of(user))
    return user.account, card


def _stored_cdr(
    account_id: int,
    card_id: int,
    ocpi_id: str,
    *,
    volume: object = 20,
    total_energy: Decimal = Decimal(20),
    name: str = "Gent Zuid",
    start: dt.datetime = OCT,
) -> Cdr:
    """A CDR stored as it is, with the test tariff inside (so it is rated from it)."""
    end = start + dt.timedelta(hours=1)
    data = {
        "country_code": "NL",
        "party_id": "TCP",
        "id": ocpi_id,
        "start_date_time": start.isoformat(),
        "end_date_time": end.isoformat(),
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": start.isoformat(),
                "dimensions": [{"type": "ENERGY", "volume": volume}, {"type": "TIME", "volume": 1}],
            }
        ],
        "total_cost": {"excl_vat": 6.5},
        "total_energy": 20,
        "total_time": 1,
        "cdr_location": {"id": "LOC1", "name": name, "city": "Gent", "country": "BEL", "evse_id": "BE*BEC*E041503003"},
        "tariffs": [TARIFF],
    }
    cdr = Cdr(
        country_code="NL",
        party_id="TCP",
        ocpi_id=ocpi_id,
        card_id=card_id,
        account_id=account_id,
        token_uid="X",
        start_date_time=start,
        end_date_time=end,
        location_ocpi_id="LOC1",
        evse_uid="E1",
        country="BEL",
        currency="EUR",
        total_energy=total_energy,
        total_time=Decimal(1),
        total_cost_excl_vat=Decimal("6.5"),
        data=data,
        last_updated=end,
    )
    db.session.add(cdr)
    db.session.flush()
    return cdr


def _cli(app, *args: str, exit_code: int = 0):  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == exit_code, (result.output, result.exception)
    return result


def _json_head(output: str) -> dict:
    """The JSON document a command printed first (progress bars and notes may follow)."""
    return json.JSONDecoder().raw_decode(output[output.index("{") :])[0]


# --- rating ----------------------------------------------------------------------------------------------------


def test_rate_pending_rates_the_others_when_one_cdr_cannot_be_rated(app, db_session):
    account, card = _driver()
    first = _stored_cdr(account.id, card.id, "GOOD1", start=OCT)
    huge = _stored_cdr(account.id, card.id, "HUGE1E30", volume=1e30, start=OCT + dt.timedelta(hours=2))
    # Priced at 0.30/kWh, 1e12 kWh cost more than Numeric(14, 4) holds: PostgreSQL refuses the charge (numeric
    # field overflow) and the CDR stays unrated; SQLite stores it, and the outlier guard holds it later.
    overflowing = _stored_cdr(account.id, card.id, "OVERFLOW", volume=10**12, start=OCT + dt.timedelta(hours=4))
    last = _stored_cdr(account.id, card.id, "GOOD2", start=OCT + dt.timedelta(hours=6))
    db.session.commit()

    result = _cli(app, "rating", "rate-pending", exit_code=1)  # exit 1: some CDRs could not be rated

    charged = set(db.session.scalars(select(SessionCharge.cdr_id)))
    assert {first.id, last.id} <= charged and huge.id not in charged
    assert (overflowing.id in charged) is not _postgresql()
    unrated = 1 + _postgresql()
    assert f"rated {len(charged)} CDRs; could not rate {unrated}" in result.output
    # Grouped by reason (most CDRs first, then by reason), a few CDR ids each.
    reasons = result.output.splitlines()[2:]
    assert any(
        line.startswith("  1 × a number out of range or not a number (InvalidOperation") and line.endswith(": HUGE1E30")
        for line in reasons
    )
    assert len(reasons) == unrated
    problems = {problem.cdr_id: problem for problem in db.session.scalars(select(RatingProblem))}
    assert set(problems) == ({huge.id, overflowing.id} if _postgresql() else {huge.id})
    assert problems[huge.id].reason.startswith("a number out of range or not a number")
    if _postgresql():
        assert "numeric field overflow" in problems[overflowing.id].reason
        assert "INSERT" not in problems[overflowing.id].reason  # no SQL statement, no other rows' data

    # Tried again (every 5 minutes, every preview): still one problem per CDR, counted.
    rated, problems_again = pending.rate_pending()
    assert rated == 0 and len(problems_again) == unrated
    assert db.session.get(RatingProblem, problems[huge.id].id).attempts == 2
    # Fixed data: the CDR is rated and its problem is forgotten.
    periods = huge.data["charging_periods"]
    huge.data = {
        **huge.data,
        "charging_periods": [
            {**periods[0], "dimensions": [{"type": "ENERGY", "volume": 20}, {"type": "TIME", "volume": 1}]}
        ],
    }
    db.session.flush()
    pending.rate_pending()
    assert huge.id not in {problem.cdr_id for problem in db.session.scalars(select(RatingProblem))}


def test_the_rating_tasks_rate_each_cdr_alone_and_keep_why(app, db_session):
    from app.rating.tasks import rate_cdr_task, rate_cdrs_task

    account, card = _driver()
    good = _stored_cdr(account.id, card.id, "T-GOOD")
    huge = _stored_cdr(account.id, card.id, "T-HUGE", volume=1e30, start=OCT + dt.timedelta(hours=2))
    db.session.commit()

    assert rate_cdrs_task.delay([huge.id, good.id]).get() == {"not rated": 1, "rated": 1}
    assert rate_cdr_task.delay(huge.id).get() == "not rated"
    problem = db.session.scalar(select(RatingProblem).where(RatingProblem.cdr_id == huge.id))
    assert problem.attempts == 2 and "out of range" in problem.reason
    assert pending.open_problems() == {huge.id: ("T-HUGE", problem.reason)}


# --- the invoice run -------------------------------------------------------------------------------------------


def _invoices() -> dict[int, Invoice]:
    return {invoice.account_id: invoice for invoice in db.session.scalars(select(Invoice))}


def test_the_run_invoices_everyone_else_and_reports_the_account_that_fails(app, db_session):
    normal = [_driver() for _ in range(3)]
    for account, card in normal:
        rated_session(account.id, card.id, OCT)
    # A CDR that cannot be rated (1e30 kWh) next to a normal session of the same driver.
    unratable, unratable_card = _driver()
    rated_session(unratable.id, unratable_card.id, OCT)
    _stored_cdr(unratable.id, unratable_card.id, "P-1E30", volume=1e30, start=OCT + dt.timedelta(days=1))
    # A CDR at the columns' maximum: rated, then held for finance by the outlier guard (its SQL filter must not
    # overflow on it).
    at_max, at_max_card = _driver()
    rated_session(at_max.id, at_max_card.id, OCT)
    _stored_cdr(
        at_max.id,
        at_max_card.id,
        "P-MAX",
        volume=float(COLUMN_MAX),
        total_energy=COLUMN_MAX,
        start=OCT + dt.timedelta(days=1),
    )
    # A CDR whose document holds a NUL: PostgreSQL's JSON operators cannot read it back.
    nul, nul_card = _driver()
    nul_cdr = _stored_cdr(nul.id, nul_card.id, "P-NUL", name="Gent\u0000Zuid")
    rating.rate_cdr(nul_cdr)
    # A huge session finance released from its hold: no invoice can carry it.
    released, released_card = _driver()
    rated_session(released.id, released_card.id, OCT)
    huge = rating.rate_cdr(
        _stored_cdr(
            released.id,
            released_card.id,
            "P-RELEASED",
            volume=float(COLUMN_MAX),
            total_energy=COLUMN_MAX,
            start=OCT + dt.timedelta(days=2),
        )
    )
    db.session.commit()
    assert huge.driver_excl_vat > Decimal(composition.MAX_INVOICE_MINOR) / 100

    first_preview = _json_head(_cli(app, "billing", "run", "--period", "2026-10", "--dry-run").output)["preview"]
    assert first_preview["held_sessions"] == 2 and first_preview["accounts_failed"] == 0
    assert first_preview["not_rated"] and first_preview["not_rated"][0].startswith("P-1E30: a number out of range")
    hold = db.session.scalar(select(SessionHold).where(SessionHold.session_charge_id == huge.id))
    holds.release(hold, FINANCE, "the CPO confirmed it")
    db.session.commit()

    preview = _json_head(_cli(app, "billing", "run", "--period", "2026-10", "--dry-run").output)["preview"]

    assert preview["accounts_failed"] == 1 and preview["accounts"] == 6
    [failure] = preview["failed_accounts"]
    assert failure["account_id"] == released.id
    assert failure["reason"].startswith(f"session charge {huge.id} (CDR 'P-RELEASED'): 9999999999.9999 kWh")
    assert "left out of these figures" in preview["note"]
    previewed = sum(Decimal(row["excl_vat"]) for row in preview["per_vat_rate"])
    assert 0 < previewed < 100  # six accounts of a session each; the released billions are left out

    _cli(app, "billing", "approve", "--period", "2026-10")
    result = _cli(app, "billing", "run", "--period", "2026-10", "--no-deliver")

    figures = _json_head(result.output)
    assert figures["progress"]["failed"] == 1 and figures["progress"]["done"] == 6
    [failed] = figures["failed_accounts"]
    assert failed["account_id"] == released.id
    assert failed["reason"].startswith(f"session charge {huge.id} (CDR 'P-RELEASED'): 9999999999.9999 kWh for ")
    assert "more than an invoice line can hold" in failed["reason"]
    assert "1 accounts failed" in result.output
    invoices = _invoices()
    assert set(invoices) == {account.id for account, _card in normal} | {unratable.id, at_max.id, nul.id}
    assert sorted(invoice.sequence for invoice in invoices.values()) == [1, 2, 3, 4, 5, 6]  # no gap
    assert len(invoices[unratable.id].lines) == len(invoices[at_max.id].lines) == 1  # the bad CDR is not on it
    [nul_line] = invoices[nul.id].lines
    assert "\x00" not in nul_line.description and "\x00" not in json.dumps(invoices[nul.id].snapshot)
    assert db.session.get(InvoiceRun, runs.run_for("2026-10").id).status == RunStatus.FINALIZING

    check = _cli(app, "billing", "uninvoiced", "--period", "2026-10", exit_code=1)
    listed = json.loads(check.output)
    assert listed["unrated_cdr_ids"] == ["P-1E30"]
    assert listed["unrated_reasons"]["P-1E30"].startswith("a number out of range or not a number")
    assert [item["account_id"] for item in listed["failed_accounts"]] == [released.id]
    assert listed["uninvoiced_session_charge_ids"] == sorted(
        db.session.scalars(select(SessionCharge.id).where(SessionCharge.account_id == released.id))
    )

    # The data is fixed (the CPO sent the right figures): a retry of the run invoices the account, number 7.
    db.session.execute(
        update(SessionCharge)
        .where(SessionCharge.id == huge.id)
        .values(
            kwh=Decimal(20),
            cpo_cost_excl_vat=Decimal("6.5"),
            driver_excl_vat=Decimal(8),
            vat_amount=Decimal("1.68"),
            driver_incl_vat=Decimal("9.68"),
            margin=Decimal("1.5"),
        )
    )
    db.session.commit()
    retried = _json_head(_cli(app, "billing", "run", "--period", "2026-10", "--no-deliver").output)
    assert retried["status"] == "finalized" and retried["failed_accounts"] == []
    assert sorted(invoice.sequence for invoice in _invoices().values()) == [1, 2, 3, 4, 5, 6, 7]
    assert len(_invoices()[released.id].lines) == 2


def test_a_document_postgresql_cannot_read_does_not_fail_its_account(app, db_session):
    """Before: the batch's query failed on PostgreSQL ("unsupported Unicode escape sequence"), then the account
    alone, on every retry. Its location is printed from what can be read instead."""
    account, card = _driver()
    cdr = _stored_cdr(account.id, card.id, "NUL-ONLY", name="Gent\u0000Zuid")
    rating.rate_cdr(cdr)
    other, other_card = _driver()
    rated_session(other.id, other_card.id, OCT)
    db.session.commit()

    rows = composition.billable_charges([account.id, other.id], dt.datetime(2026, 11, 1, tzinfo=dt.UTC))

    [row] = rows[account.id]
    if _postgresql():
        assert row.cdr_location_name is None and row.cdr_location_evse_id is None
    else:  # SQLite reads it (up to the NUL, in the versions we met)
        assert row.cdr_location_name.startswith("Gent")
    assert rows[other.id][0].cdr_location_name == "Gent Zuid"  # the rest of the batch is read as always
    [line] = composition.compose(account, "2026-10").lines
    assert "\x00" not in line.description
    assert line.description == "LOC1" if _postgresql() else line.description.startswith("Gent")  # else: its id
    assert line.session["evse_id"] in ("E1", "BE*BEC*E041503003")


def test_the_nul_safe_columns_are_the_same_columns():
    fast = select(*composition._CHARGE_COLUMNS).selected_columns.keys()
    safe = select(*composition._CHARGE_COLUMNS_NUL_SAFE).selected_columns.keys()
    assert tuple(fast) == tuple(safe) == composition.BillableCharge._fields


def test_a_failure_while_numbering_or_freezing_fails_that_account_alone_and_gives_its_number_back(
    app, db_session, monkeypatch
):
    drivers = [_driver() for _ in range(4)]
    for account, card in drivers:
        rated_session(account.id, card.id, OCT)
    db.session.commit()
    doomed = drivers[2][0].id
    real = runs.finalize_compositions

    def freezing_fails_for_one(compositions, run_id=None):  # type: ignore[no-untyped-def]
        stored = real(compositions, run_id)  # numbers taken, invoices written
        if any(composition.account.id == doomed for composition in compositions):
            raise OverflowError("int too large to convert")
        return stored

    _cli(app, "billing", "run", "--period", "2026-10", "--dry-run")
    _cli(app, "billing", "approve", "--period", "2026-10")
    monkeypatch.setattr(runs, "finalize_compositions", freezing_fails_for_one)
    _cli(app, "billing", "run", "--period", "2026-10", "--no-deliver")

    assert sorted(_invoices()) == sorted(account.id for account, _card in drivers if account.id != doomed)
    assert sorted(invoice.sequence for invoice in _invoices().values()) == [1, 2, 3]
    item = db.session.scalar(select(RunItem).where(RunItem.account_id == doomed))
    assert (item.status, item.error) == ("failed", "OverflowError: int too large to convert")

    monkeypatch.setattr(runs, "finalize_compositions", real)
    _cli(app, "billing", "run", "--period", "2026-10", "--no-deliver")
    assert _invoices()[doomed].sequence == 4


def test_the_celery_chunk_task_fails_the_bad_account_alone(app, db_session):
    drivers = [_driver() for _ in range(3)]
    for account, card in drivers:
        rated_session(account.id, card.id, OCT)
    bad, bad_card = _driver()
    charge = rated_session(bad.id, bad_card.id, OCT)
    db.session.commit()
    run = runs.preview("2026-10", FINANCE)
    runs.approve(run, FINANCE)
    runs.start_finalizing(run, FINANCE)
    # Finance adjusted a session to more than an invoice can carry (any amount of 2 decimals is accepted).
    hold = SessionHold(session_charge_id=charge.id, reasons=["test"])
    db.session.add(hold)
    db.session.flush()
    holds.adjust(hold, FINANCE, "as the CPO says", "99999999.99")
    db.session.commit()
    items = list(db.session.scalars(select(RunItem.id).where(RunItem.run_id == run.id).order_by(RunItem.id)))

    tasks.finalize_chunk.delay(run.id, items).get()

    statuses = dict(db.session.execute(select(RunItem.account_id, RunItem.status)).all())
    assert statuses == {**{account.id: "done" for account, _card in drivers}, bad.id: "failed"}
    error = db.session.scalar(select(RunItem.error).where(RunItem.account_id == bad.id))
    assert error.startswith(f"session charge {charge.id} (CDR ") and "more than an invoice line can hold" in error
    assert sorted(invoice.sequence for invoice in _invoices().values()) == [1, 2, 3]
    assert db.session.get(InvoiceRun, run.id).status == RunStatus.FINALIZING  # open for a retry
    page_failures = runs.failed_items(run)
    assert [failure["account_id"] for failure in page_failures] == [bad.id]


# --- figures that are not numbers ------------------------------------------------------------------------------


def test_a_session_whose_figures_are_not_numbers_is_held_not_a_crash(app, db_session):
    account, card = _driver()
    normal = rated_session(account.id, card.id, OCT)
    broken = rated_session(account.id, card.id, OCT + dt.timedelta(days=1))
    # PostgreSQL's numeric stores NaN (SQLite cannot: it turns NaN into NULL); SQLite stores infinity.
    value = "NaN" if _postgresql() else "Infinity"
    db.session.execute(
        text(
            "UPDATE rating_session_charges SET driver_incl_vat = CAST(:value AS NUMERIC), "
            "kwh = CAST(:value AS NUMERIC) WHERE id = :id"
        )
        if _postgresql()
        else text("UPDATE rating_session_charges SET driver_incl_vat = 9e999, kwh = 9e999 WHERE id = :id"),
        {"value": value, "id": broken.id},
    )
    db.session.commit()

    preview = _json_head(_cli(app, "billing", "run", "--period", "2026-10", "--dry-run").output)["preview"]

    assert preview["held_sessions"] == 1 and preview["accounts_failed"] == 0
    hold = db.session.scalar(select(SessionHold))
    assert hold.session_charge_id == broken.id
    _cli(app, "billing", "approve", "--period", "2026-10")
    _cli(app, "billing", "run", "--period", "2026-10", "--no-deliver")
    [invoice] = _invoices().values()
    assert [line.session_charge_id for line in invoice.lines] == [normal.id]


def test_outlier_reasons_hold_what_cannot_be_compared():
    row = SimpleNamespace(
        kwh=Decimal("NaN"), total_time=Decimal(1), driver_incl_vat=Decimal("NaN"), estimate_incl_vat=None
    )
    bounds = {
        "max_kwh": Decimal(150),
        "max_average_kw": Decimal(350),
        "max_incl_vat": Decimal(150),
        "max_hours": Decimal(48),
        "max_estimate_deviation_pct": Decimal(50),
        "min_estimate_deviation": Decimal(10),
    }
    [reason] = outlier_reasons(row, row, bounds)
    assert reason.startswith("figures that cannot be checked against the limits: a number out of range")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ValueError("bad\nsecond line"), "ValueError: bad"),
        (RuntimeError(), "RuntimeError"),
        (ValueError("nul\x00inside"), "ValueError: nul\\x00inside"),
    ],
)
def test_failure_reasons_are_one_short_line(error, reason):
    assert failure_reason(error) == reason
    assert len(failure_reason(ValueError("x" * 5000))) == 500


def test_a_database_error_is_told_without_its_statement(app, db_session):
    with pytest.raises(Exception) as raised, db.session.begin_nested():
        db.session.execute(text("SELECT * FROM no_such_table_here WHERE secret = 'customer data'"))
    reason = failure_reason(raised.value)
    assert reason.startswith("database refused it (") and "no_such_table_here" in reason
    assert "customer data" not in reason and "SELECT" not in reason
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0  # the session is still usable


def test_the_back_office_run_page_shows_the_accounts_left_out_and_failed(client):
    from tests.billing.test_finance_backoffice import RUNS, _finance, _post

    good, good_card = _driver()
    rated_session(good.id, good_card.id, OCT)
    bad, bad_card = _driver()
    charge = rated_session(bad.id, bad_card.id, OCT)
    hold = SessionHold(session_charge_id=charge.id, reasons=["test"])
    db.session.add(hold)
    db.session.flush()
    holds.adjust(hold, FINANCE, "as the CPO says", "99999999.99")  # more than an invoice can carry
    _finance(client)

    _post(client, RUNS, {"period": "2026-10"})
    run = runs.run_for("2026-10")
    page = client.get(f"{RUNS}/{run.id}").get_data(as_text=True)
    assert "1 account(s) are left out of the preview figures" in page
    assert f"{bad.id:08d}" in page and f"session charge {charge.id} (CDR" in page

    _post(client, f"{RUNS}/{run.id}/approve", {}, form_url=f"{RUNS}/{run.id}")
    _post(client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}")
    page = client.get(f"{RUNS}/{run.id}").get_data(as_text=True)
    assert "1 account(s) failed" in page and "Retry failed" in page
    assert "more than an invoice line can hold" in page
    assert "left out of the preview figures" not in page  # the finalizing's own list says it now
    assert list(_invoices()) == [good.id]
