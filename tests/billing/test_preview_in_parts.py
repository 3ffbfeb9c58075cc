"""The preview's figures composed in parts (other processes at national scale: ``flask billing run --dry-run
--processes N``) are the figures composed in one go, to the cent: the sums add up part by part, an account that
fails in a part is left out and listed as it is in one go, and the ratings and holds the preview makes are
committed before the parts are handed out, so other processes see them."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from app.billing.models import InvoiceRun, SessionHold
from app.billing.runs import figures
from app.billing.runs import services as runs
from app.extensions import db
from app.plans.services import seed_default_plans
from tests.billing.sessions import rated_session
from tests.billing.test_run_batches import FINANCE, OCT, _driver
from tests.browser.conftest import _wipe_tables


def _month() -> list[int]:
    """Five drivers on two plans, sessions in two countries, one session far from its estimate (held), one
    account without anything to bill."""
    accounts = []
    for index, plan in enumerate(["payg", "comfort", "payg", "comfort", "payg"]):
        user, card = _driver(plan)
        accounts.append(user.account.id)
        if index == 4:
            continue
        rated_session(user.account.id, card.id, OCT + dt.timedelta(days=index), kwh=str(10 + index))
        rated_session(user.account.id, card.id, OCT + dt.timedelta(days=index, hours=5), kwh="7.5", country="NLD")
    return accounts


def _in_this_process(calls: list[int]) -> figures.PartsRunner:
    def run(period: str, work: list[tuple[list[int], dict[int, str]]]) -> Iterator[figures.FigureSums]:
        for account_ids, failed in reversed(work):  # any order
            calls.append(len(account_ids))
            yield figures.figure_sums(period, account_ids, failed)

    return run


def test_figures_composed_in_parts_equal_the_figures_in_one_go(app, db_session, monkeypatch):
    _month()
    one_go = runs.preview("2026-10", FINANCE).preview
    monkeypatch.setattr(figures, "PART_SIZE", 2)
    calls: list[int] = []
    in_parts = runs.preview("2026-10", FINANCE, parts=_in_this_process(calls)).preview
    assert max(calls) <= 2 and len(calls) >= 2  # really in parts (the idle account is no candidate)
    assert in_parts == one_go
    assert one_go["sessions"] == 8 and one_go["per_vat_rate"] and one_go["per_plan"]


def test_an_account_that_fails_in_a_part_is_left_out_and_listed_as_in_one_go(app, db_session, monkeypatch):
    accounts = _month()
    broken = accounts[1]
    real_compose_many = figures.compose_many

    def compose_many(batch, period, *, hold_outliers, failed):  # type: ignore[no-untyped-def]
        keep = [account for account in batch if account.id != broken]
        if len(keep) != len(batch):
            failed[broken] = "cannot be composed (test)"
        return real_compose_many(keep, period, hold_outliers=hold_outliers, failed=failed)

    monkeypatch.setattr(figures, "compose_many", compose_many)
    one_go = runs.preview("2026-10", FINANCE).preview
    monkeypatch.setattr(figures, "PART_SIZE", 2)
    in_parts = runs.preview("2026-10", FINANCE, parts=_in_this_process([])).preview
    assert in_parts == one_go
    assert in_parts["accounts_failed"] == 1
    assert in_parts["failed_accounts"] == [{"account_id": broken, "reason": "cannot be composed (test)"}]


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="the parts run in new processes, which see only the test database's committed data; the SQLite test "
    "database of the suite is not one they can open (the figures in parts are checked above on every database)",
)
def test_the_dry_run_in_processes_gives_the_figures_of_one_process(app, monkeypatch):
    monkeypatch.setenv("APP_ENV", "development")  # what the processes build their app from
    monkeypatch.setenv("DATABASE_URL", app.config["SQLALCHEMY_DATABASE_URI"])
    monkeypatch.setattr(figures, "PART_SIZE", 2)
    cli = app.test_cli_runner()
    try:
        with app.app_context():  # committed for real: the processes see the database, not this test's transaction
            seed_default_plans()
            _month()
            db.session.commit()
        one = cli.invoke(args=["billing", "run", "--period", "2026-10", "--dry-run"])
        assert one.exit_code == 0, one.output
        two = cli.invoke(args=["billing", "run", "--period", "2026-10", "--dry-run", "--processes", "2"])
        assert two.exit_code == 0, two.output

        assert json.loads(two.output)["preview"] == json.loads(one.output)["preview"]
        assert json.loads(two.output)["preview"]["sessions"] == 8
        with app.app_context():
            assert db.session.scalars(select(InvoiceRun)).one().preview["sessions"] == 8
            assert db.session.scalars(select(SessionHold)).all() == []  # no outlier here: nothing held
    finally:
        _wipe_tables(app)


def test_the_command_refuses_a_silly_number_of_processes(app, db_session):
    result = app.test_cli_runner().invoke(
        args=["billing", "run", "--period", "2026-10", "--dry-run", "--processes", "0"]
    )
    assert result.exit_code == 2 and "--processes" in result.output
