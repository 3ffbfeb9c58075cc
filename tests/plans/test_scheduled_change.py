"""A scheduled downgrade names one day everywhere (plan page, confirmation, email, back office: the 1st of next
month in the billing time zone, never the UTC date of that midnight) and the driver can cancel it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select

from app.accounts.models import Role
from app.audit.models import AuditEntry
from app.audit.services import Actor
from app.db import utcnow
from app.extensions import db
from app.plans import services
from tests.factories import login, make_user
from tests.helpers import submit_form

BRUSSELS = ZoneInfo("Europe/Brussels")


def _first_of_next_month() -> dt.date:
    today = utcnow().astimezone(BRUSSELS).date()
    return dt.date(today.year + 1, 1, 1) if today.month == 12 else dt.date(today.year, today.month + 1, 1)


def _day_text(day: dt.date) -> str:
    return format_date(day, "medium", locale="en_GB")  # the portal's English dates: day first


def _driver_on_comfort():  # type: ignore[no-untyped-def]
    user = make_user()
    services.change_plan(user.account, services.current_version("comfort"), Actor.of(user))  # an upgrade: at once
    db.session.flush()
    return user


def test_the_effective_day_is_the_local_first_of_the_month(app, db_session):
    user = _driver_on_comfort()
    scheduled = services.change_plan(user.account, services.current_version("payg"), Actor.of(user))
    # Midnight in Brussels is 23:00 or 22:00 UTC the day before.
    assert scheduled.starts_at.astimezone(dt.UTC).date() != _first_of_next_month()
    assert services.effective_day(scheduled) == _first_of_next_month()


def test_page_flash_email_and_back_office_name_the_same_day(client, mailbox):
    user = _driver_on_comfort()
    login(client, user)
    payg = services.current_version("payg")
    response = submit_form(
        client, "/plan/change?lang=en", {"plan_id": str(payg.id)}, form_url="/plan/?lang=en", follow_redirects=True
    )
    html = response.get_data(as_text=True)
    expected = _day_text(_first_of_next_month())
    day_before = _day_text(_first_of_next_month() - dt.timedelta(days=1))
    # The confirmation shown after the change and the plan page's notice.
    assert html.count(f"Your plan changes to Pay as you go on {expected}.") == 2, html
    assert day_before not in html
    mail = mailbox.to(user.email)[-1]
    assert mail["Subject"] == "Your plan changes soon"
    body = mail.get_body(("plain",)).get_content()
    assert f"on {expected}" in body and day_before not in body
    submit_form(client, "/logout", {}, form_url="/plan/")

    staff = make_user(Role.SUPPORT)
    login(client, staff)
    office = client.get(f"/backoffice/support/accounts/{user.account.id}?lang=en").get_data(as_text=True)
    assert f"from {expected}" in office and day_before not in office


def test_the_driver_cancels_a_scheduled_downgrade(client, mailbox):
    user = _driver_on_comfort()
    login(client, user)
    payg = services.current_version("payg")
    submit_form(client, "/plan/change", {"plan_id": str(payg.id)}, form_url="/plan/")
    assert services.pending_change(user.account.id) is not None
    page = client.get("/plan/?lang=en").get_data(as_text=True)
    assert 'action="/plan/scheduled-change/cancel"' in page

    response = submit_form(
        client, "/plan/scheduled-change/cancel", {}, form_url="/plan/?lang=en", follow_redirects=True
    )
    html = response.get_data(as_text=True)
    assert "The scheduled change is cancelled: you stay on Comfort." in html
    assert "Your plan changes to" not in html
    assert services.pending_change(user.account.id) is None
    stretches = services.history(user.account.id)
    assert stretches[-1].plan.code == "comfort" and stretches[-1].ends_at is None
    assert mailbox.to(user.email)[-1]["Subject"] == "Your plan change is cancelled"
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == "plan.change_cancelled").order_by(AuditEntry.id.desc())
    )
    assert entry is not None and entry.details["dropped"] == "payg"


def test_cancelling_with_nothing_scheduled_says_so_and_changes_nothing(client):
    user = _driver_on_comfort()
    login(client, user)
    before = [(s.plan_id, s.starts_at, s.ends_at) for s in services.history(user.account.id)]
    response = submit_form(
        client, "/plan/scheduled-change/cancel", {}, form_url="/plan/?lang=en", follow_redirects=True
    )
    assert "No plan change is scheduled." in response.get_data(as_text=True)
    assert [(s.plan_id, s.starts_at, s.ends_at) for s in services.history(user.account.id)] == before


def test_cancel_needs_the_form_token(client):
    user = _driver_on_comfort()
    login(client, user)
    assert client.post("/plan/scheduled-change/cancel").status_code == 400
