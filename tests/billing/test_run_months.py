"""A run may cover only a month that has ended in the seller's time zone: on 6 December the back office accepted
previews for 2026-12 and 2027-01, and finalizing 2027-01 billed a December session under "2027-01" with a due date
before the period. Refused at every step, in the CLI and the back office alike."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.accounts.models import Role
from app.audit.services import Actor
from app.billing.invoicing.invoices import BillingError
from app.billing.models import InvoiceRun, RunStatus
from app.billing.runs import services as runs
from app.db import utcnow
from app.extensions import db
from app.plans.services import billing_zone
from tests.factories import login, make_user
from tests.helpers import submit_form

RUNS = "/backoffice/finance/runs"
FINANCE = Actor.system("test-finance")


def _month(moment: dt.datetime, months_ahead: int = 0) -> str:
    local = moment.astimezone(billing_zone())
    index = local.year * 12 + local.month - 1 + months_ahead
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _runs() -> int:
    return db.session.scalar(select(func.count(InvoiceRun.id))) or 0


def test_a_month_ends_at_midnight_in_the_sellers_time_zone(db_session):
    # November ends at 1 December 00:00 in Brussels, which is 30 November 23:00 UTC (CET, UTC+1).
    with pytest.raises(BillingError, match=r"2026-11 has not ended yet.*from 2026-12-01"):
        runs.check_month_ended("2026-11", now=dt.datetime(2026, 11, 30, 22, 59, 59, tzinfo=dt.UTC))
    assert runs.check_month_ended("2026-11", now=dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC)) == "2026-11"


@pytest.mark.parametrize("months_ahead", [0, 1, 13])
def test_the_cli_refuses_a_month_that_has_not_ended(app, db_session, months_ahead):
    period = _month(utcnow(), months_ahead)
    for args in (["run", "--period", period, "--dry-run"], ["run", "--period", period]):
        result = app.test_cli_runner().invoke(args=["billing", *args])
        assert result.exit_code != 0
        assert f"{period} has not ended yet" in result.output
    assert _runs() == 0


def test_last_month_can_be_previewed(app, db_session):
    period = _month(utcnow(), -1)
    result = app.test_cli_runner().invoke(args=["billing", "run", "--period", period, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert runs.run_for(period) is not None


def test_a_preview_stored_before_the_rule_can_be_neither_approved_nor_finalized(db_session):
    period = _month(utcnow())
    run = InvoiceRun(period=period, created_by="before the rule", preview={})
    db.session.add(run)
    db.session.flush()
    with pytest.raises(BillingError, match="has not ended yet"):
        runs.approve(run, FINANCE)
    run.status = RunStatus.APPROVED  # approved before the rule existed
    with pytest.raises(BillingError, match="has not ended yet"):
        runs.start_finalizing(run, FINANCE)
    assert run.status == RunStatus.APPROVED


def test_the_back_office_refuses_a_month_that_has_not_ended(client):
    login(client, make_user(Role.FINANCE))
    period = _month(utcnow(), 1)
    response = submit_form(client, RUNS, {"period": period}, form_url=RUNS)
    assert response.status_code == 400
    assert f"{period} has not ended yet" in response.get_data(as_text=True)
    assert _runs() == 0


def test_the_back_office_offers_the_last_month_that_has_ended(client):
    login(client, make_user(Role.FINANCE))
    page = client.get(RUNS).get_data(as_text=True)
    assert f'value="{runs.last_ended_month()}"' in page
    assert runs.last_ended_month(dt.datetime(2027, 1, 15, tzinfo=dt.UTC)) == "2026-12"
    # 31 December 23:30 UTC is already 1 January in Brussels: December has ended.
    assert runs.last_ended_month(dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)) == "2026-12"
