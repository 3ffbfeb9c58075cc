"""Plans: versioning, upgrades at once, downgrades at month end, terms at time T, proration by day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from app.audit.services import Actor
from app.extensions import db
from app.plans import services
from app.plans.models import Subscription
from tests.factories import login, make_user
from tests.helpers import submit_form

BRUSSELS = ZoneInfo("Europe/Brussels")
ADMIN = Actor.system("test-admin")


def at(year, month, day, hour=12):  # type: ignore[no-untyped-def]
    return dt.datetime(year, month, day, hour, tzinfo=BRUSSELS).astimezone(dt.UTC)


def _new_account(db_session, plan_code="payg", start=None):  # type: ignore[no-untyped-def]
    user = make_user(company_name="Fleet NV")
    # make_user subscribes to payg now; rewrite history to start at a fixed date for deterministic tests
    for stretch in services.history(user.account.id):
        db.session.delete(stretch)
    db.session.flush()
    services.subscribe(user.account, services.current_version(plan_code), ADMIN, at=start or at(2026, 9, 1, 0))
    return user.account


def test_seeded_plans_exist(db_session):
    codes = {plan.code for plan in services.current_plans()}
    assert {"payg", "comfort", "business"} <= codes


def test_upgrade_is_immediate_downgrade_at_month_end(db_session):
    account = _new_account(db_session)
    comfort = services.current_version("comfort")
    payg = services.current_version("payg")
    services.change_plan(account, comfort, ADMIN, now=at(2026, 10, 10, 15))
    assert services.plan_at(account.id, at(2026, 10, 10, 16)).code == "comfort"
    assert services.plan_at(account.id, at(2026, 10, 10, 14)).code == "payg"

    services.change_plan(account, payg, ADMIN, now=at(2026, 10, 20))
    assert services.plan_at(account.id, at(2026, 10, 31, 23)).code == "comfort"
    assert services.plan_at(account.id, at(2026, 11, 1, 0)).code == "payg"
    # month boundary in Brussels time: 1 Nov 00:00 CET is 31 Oct 23:00 UTC
    pending = services.pending_change(account.id, at(2026, 10, 20))
    assert pending.starts_at == dt.datetime(2026, 10, 31, 23, 0, tzinfo=dt.UTC)

    # Changing one's mind before the date replaces the scheduled change.
    services.change_plan(account, comfort, ADMIN, now=at(2026, 10, 25))
    assert services.pending_change(account.id, at(2026, 10, 25)) is None
    assert services.plan_at(account.id, at(2026, 11, 5)).code == "comfort"


def test_business_plan_only_for_business_accounts(db_session):
    user = make_user()
    with pytest.raises(services.PlanError, match="business"):
        services.change_plan(user.account, services.current_version("business"), ADMIN)


def test_revising_a_plan_with_subscribers_makes_a_new_version(db_session):
    account = _new_account(db_session, "comfort")
    old = services.current_version("comfort")
    new = services.revise_plan(old, {"monthly_fee": Decimal("5.99")}, ADMIN, reason="price change 2027")
    assert new.id != old.id and new.version == old.version + 1
    assert old.monthly_fee == Decimal("4.99") and not old.is_current and old.superseded_by_id == new.id
    # The subscriber keeps the terms they signed up to.
    assert services.plan_at(account.id, at(2026, 10, 15)).id == old.id
    assert services.current_version("comfort").id == new.id


def test_revising_a_plan_without_subscribers_edits_in_place(db_session):
    plan = services.create_plan(
        "trial",
        {"en": "Trial"},
        {
            "monthly_fee": Decimal("0"),
            "markup_percent": Decimal("0"),
            "markup_per_kwh": Decimal("0.01"),
            "session_fee": Decimal("0"),
            "session_fee_cap_per_month": None,
            "currency": "EUR",
        },
        ADMIN,
    )
    same = services.revise_plan(plan, {"markup_per_kwh": Decimal("0.02")}, ADMIN)
    assert same.id == plan.id and plan.version == 1 and plan.markup_per_kwh == Decimal("0.02")


def test_bad_terms_are_refused(db_session):
    with pytest.raises(services.PlanError):
        services.create_plan(
            "bad",
            {"en": "Bad"},
            {
                "monthly_fee": Decimal("-1"),
                "markup_percent": Decimal(0),
                "markup_per_kwh": Decimal(0),
                "session_fee": Decimal(0),
            },
            ADMIN,
        )


def test_proration_by_day(db_session):
    account = _new_account(db_session, "payg", start=at(2026, 9, 1, 0))
    comfort = services.current_version("comfort")  # 4.99 / month
    # Upgrade on 11 October (31-day month): 21 days of comfort (11..31), the upgrade day included.
    services.change_plan(account, comfort, ADMIN, now=at(2026, 10, 11, 9))
    fees = services.prorated_monthly_fees(account.id, 2026, 10)
    assert len(fees) == 1
    assert fees[0].days == 21 and fees[0].days_in_month == 31
    assert fees[0].amount == (Decimal("4.99") * 21 / 31).quantize(Decimal("0.0001"))
    # A full month of comfort in November.
    november = services.prorated_monthly_fees(account.id, 2026, 11)
    assert [(fee.days, fee.amount) for fee in november] == [(30, Decimal("4.9900"))]


def test_proration_across_a_new_version_and_a_downgrade(db_session):
    account = _new_account(db_session, "comfort", start=at(2026, 2, 1, 0))
    # February 2026 has 28 days: full month
    assert services.prorated_monthly_fees(account.id, 2026, 2)[0].days == 28
    services.change_plan(account, services.current_version("payg"), ADMIN, now=at(2026, 2, 10))
    assert services.prorated_monthly_fees(account.id, 2026, 3) == []


def test_plan_page_and_change_through_http(client):
    user = make_user()
    login(client, user)
    page = client.get("/plan/")
    assert page.status_code == 200 and "Comfort" in page.get_data(as_text=True)
    comfort = services.current_version("comfort")
    response = submit_form(client, "/plan/change", {"plan_id": str(comfort.id)}, form_url="/plan/")
    assert response.status_code == 302
    assert services.plan_at(user.account.id, dt.datetime.now(dt.UTC)).code == "comfort"
    assert db.session.query(Subscription).filter_by(account_id=user.account.id).count() == 2
    # A business plan is refused for a private driver, with a message, and nothing changes.
    business = services.current_version("business")
    response = submit_form(
        client, "/plan/change", {"plan_id": str(business.id)}, form_url="/plan/", follow_redirects=True
    )
    assert "business" in response.get_data(as_text=True)
    assert db.session.query(Subscription).filter_by(account_id=user.account.id).count() == 2
