"""A driver adds a card through the (localstripe) Stripe.js card element in Chromium and sees it saved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from app.extensions import db
from tests.browser.conftest import LiveServer, make_live_app, running
from tests.factories import PASSWORD, make_user
from tests.payments.emulator import LocalStripe, localstripe

__all__ = ["localstripe"]

pytestmark = pytest.mark.browser
SCREENSHOT = Path("/tmp/payment_method.png")
FORM_SCREENSHOT = Path("/tmp/payment_method_form.png")


@pytest.fixture
def stripe_live_server(app: Flask, localstripe: LocalStripe, tmp_path: Path) -> Iterator[LiveServer]:
    """Like the ``live_server`` fixture, with the app pointed at the localstripe emulator."""
    with running(make_live_app(app, tmp_path, **localstripe.config()), tmp_path / "outbox") as server:
        yield server


def test_driver_adds_a_card_with_stripe_js(stripe_live_server, page):
    with stripe_live_server.app.app_context():
        user = make_user(email="card.driver@example.com", full_name="Card Driver")
        db.session.commit()
        email = user.email
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)

    page.goto(stripe_live_server.url + "/login?next=/payment-method")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # The buttons work once payment_method.js (deferred) has run: wait for the page to finish loading, or a
    # click on a busy machine lands before its handlers exist and the card element is never mounted.
    page.wait_for_url("**/payment-method")
    page.wait_for_load_state("load")
    assert page.get_by_role("heading", name="Payment method", exact=True).is_visible()
    assert page.get_by_text("You have no payment method yet").is_visible()

    page.get_by_role("button", name="Use a card").click()
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill("4242424242424242")
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("34")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("2000")
    page.screenshot(path=str(FORM_SCREENSHOT), full_page=True)
    page.get_by_role("button", name="Save card").click()

    page.wait_for_url("**/payment-method")
    page.get_by_text("Your payment method is saved").wait_for()
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert page.get_by_text("Visa •••• 4242", exact=True).is_visible()
    assert page.get_by_text("12/2034").is_visible()

    # Replace it with a SEPA Direct Debit mandate (the emulator's Stripe.js has no IBAN Element: plain field).
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Use SEPA Direct Debit").click()
    assert page.get_by_label("Account holder").input_value() == "Card Driver"
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_role("button", name="Accept mandate and save").click()
    page.get_by_text("SEPA Direct Debit •••• 3000", exact=True).wait_for()
    assert "4242" not in page.locator("main").inner_text()
    assert not [error for error in console_errors if "Content Security Policy" in error], console_errors
