"""A driver orders a card, support ships it from stock, the driver activates it and blocks it (real pages)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.accounts.models import Role
from app.cards.models import Card
from app.cards.stock import import_stock
from app.extensions import db
from tests.factories import give_payment_method, make_user

pytestmark = pytest.mark.browser


def _log_in(page, base_url: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base_url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()


def test_order_ship_activate_block(live_server, browser, tmp_path):
    with live_server.app.app_context():
        driver = make_user(email="card.driver@example.com", full_name="Card Driver")
        give_payment_method(driver.account)
        make_user(Role.SUPPORT, email="card.support@example.com")
        import_stock([(1, "04C0FFEE", "VLT-100001"), (2, "04C0FFEF", "VLT-100002")], batch="browser")
        db.session.commit()
        account_id = driver.account.id

    driver_page = browser.new_context(locale="en-GB").new_page()
    _log_in(driver_page, live_server.url, "card.driver@example.com")
    driver_page.get_by_role("link", name="Cards").click()
    driver_page.get_by_label("Label (optional)").fill("Family car")
    driver_page.get_by_role("button", name="Order card").click()
    assert "Your card is ordered" in driver_page.content()

    support_page = browser.new_context(locale="en-GB").new_page()
    _log_in(support_page, live_server.url, "card.support@example.com")
    support_page.get_by_role("link", name="Support", exact=True).click()
    support_page.get_by_label("Find an account").fill("card.driver@")
    support_page.get_by_role("button", name="Search").click()
    support_page.get_by_role("link", name=f"{account_id:08d}").click()
    support_page.get_by_text("Ship from stock").first.click()
    support_page.locator("textarea[id^=ship-]").fill("posted today")
    support_page.get_by_role("button", name="Ship from stock").click()
    assert "Card shipped from stock." in support_page.content()
    support_page.screenshot(path="/tmp/support_account.png", full_page=True)

    with live_server.app.app_context():
        visual_number = db.session.scalar(select(Card.visual_number).where(Card.account_id == account_id))
    assert visual_number == "VLT-100001"

    driver_page.goto(live_server.url + "/cards/")
    driver_page.get_by_label("Card number").fill(visual_number)
    driver_page.get_by_role("button", name="Activate").click()
    assert "is active" in driver_page.content()

    driver_page.get_by_label("Why?").select_option("lost")
    driver_page.get_by_role("button", name="Block card").click()
    assert "The card is blocked" in driver_page.content()
    assert driver_page.locator(".badge--blocked").first.is_visible()
    driver_page.screenshot(path="/tmp/card_blocked.png", full_page=True)
