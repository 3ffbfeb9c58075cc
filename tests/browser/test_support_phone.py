"""Support's account page and a session's price breakdown on a 390 px wide phone (Chromium through Playwright, a live
server): the page never scrolls sideways (wide tables scroll inside their own frame) and each session's total is
on screen without scrolling. Screenshots go to ``SCREENSHOT_DIR`` (default: the test's temporary folder)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from app.accounts.models import Role
from app.audit.services import Actor
from app.cards import services as card_services
from app.charging.models import Cdr
from app.db import utcnow
from app.extensions import db
from app.roaming.models import Partner, PartnerStatus
from app.roaming.send import authorization
from tests.billing.sessions import rated_session
from tests.factories import add_stock, give_payment_method, make_user

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _log_in(page, base_url: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base_url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()


def _overflow(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The elements that stick out of the screen sideways (none: no sideways scrolling), outside the frames that
    scroll on their own (wide tables)."""
    return list(
        page.evaluate(
            """() => {
              const width = document.documentElement.clientWidth;
              if (document.documentElement.scrollWidth <= width) return [];
              return [...document.querySelectorAll('body *')]
                .filter(el => !el.closest('.table-wrap') && el.getBoundingClientRect().right > width + 0.5)
                .map(el => el.tagName + '.' + el.className + ': ' + (el.textContent || '').trim().slice(0, 60));
            }"""
        )
    )


def test_account_page_and_price_breakdown_fit_a_phone(live_server, browser, tmp_path):
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with live_server.app.app_context():
        user = make_user(full_name="Eva Peeters-Vandenbroucke", email="eva.peeters.vandenbroucke@example.com")
        give_payment_method(user.account)
        add_stock(1, start=99_000)
        card = card_services.ship_card(card_services.order_card(user.account, Actor.of(user)), Actor.system("ops"))
        card_services.activate_card(user.account, card.visual_number, Actor.of(user))
        from app.plans.models import Subscription

        for subscription in db.session.query(Subscription).filter_by(account_id=user.account.id):
            subscription.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        start = dt.datetime(2026, 10, 14, 17, 0, tzinfo=dt.UTC)
        for day in range(6):
            rated_session(user.account.id, card.id, start - dt.timedelta(days=day), kwh=str(12 + day * 7), hours=1.5)
        cpo = Partner(
            name="Allego",
            country_code="NL",
            party_id="TCP",
            status=PartnerStatus.REGISTERED,
            incoming_token_hash="1" * 64,
            registered_at=utcnow(),
            endpoints=[],
        )
        db.session.add(cpo)
        db.session.flush()
        authorization.authorize(cpo, card.uid, "RFID", {"location_id": "LOC1", "evse_uids": ["E1"]})
        make_user(Role.SUPPORT, email="phone.support@example.com")
        db.session.commit()
        account_id = user.account.id
        newest = db.session.query(Cdr).filter_by(account_id=account_id).order_by(Cdr.start_date_time.desc()).first()
        assert newest is not None
        cdr_id = newest.id

    context = browser.new_context(locale="en-GB", viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    try:
        _log_in(page, live_server.url, "phone.support@example.com")
        page.goto(f"{live_server.url}/backoffice/support/accounts/{account_id}")
        assert "Sessions and charge detail records" in page.content()
        page.screenshot(path=str(shots / "support-account-390.png"), full_page=True)
        assert _overflow(page) == []
        total = page.locator("[data-sessions] tbody tr").first.locator("td").nth(1)
        box = total.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box

        page.locator("[data-sessions] tbody tr").first.get_by_role("link", name="Price breakdown").click()
        assert f"/sessions/{cdr_id}" in page.url
        assert "Why did this session cost" in page.content()
        page.screenshot(path=str(shots / "support-session-390.png"), full_page=True)
        assert _overflow(page) == []
    finally:
        context.close()
    # The same pages on a desktop screen, for people to look at.
    desktop = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    try:
        page = desktop.new_page()
        _log_in(page, live_server.url, "phone.support@example.com")
        for name, path in (
            ("account", f"accounts/{account_id}"),
            ("session", f"accounts/{account_id}/sessions/{cdr_id}"),
        ):
            page.goto(f"{live_server.url}/backoffice/support/{path}")
            page.screenshot(path=str(shots / f"support-{name}-1280.png"), full_page=True)
            assert _overflow(page) == []
    finally:
        desktop.close()
