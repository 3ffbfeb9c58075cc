"""A new driver signs up, confirms, logs in and resets the password through the real pages in Chromium."""

from __future__ import annotations

import email
import email.policy
import re

import pytest

pytestmark = pytest.mark.browser


def _last_link(outbox, address: str) -> str:  # type: ignore[no-untyped-def]
    messages = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(outbox.glob("*.eml"))
    ]
    mine = [message for message in messages if message["To"] == address]
    assert mine, f"no mail to {address}"
    body = mine[-1].get_body(("plain",)).get_content()
    return re.findall(r"https?://\S+", body)[0]


def test_signup_confirm_login_logout_reset(live_server, page, tmp_path):
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Sign up").first.click()

    page.get_by_label("Email").fill("browser.driver@example.com")
    page.get_by_label("Password", exact=True).fill("browser-password-1")
    page.get_by_label("Repeat password").fill("browser-password-1")
    page.get_by_label("Full name").fill("Browser Driver")
    page.get_by_label("Street and number").fill("Rue Neuve 1")
    page.get_by_label("Postal code").fill("1000")
    page.get_by_label("City").fill("Brussel")
    page.get_by_label("Country").select_option("BE")
    page.get_by_label("Preferred language").select_option("en")
    page.get_by_label("I accept the terms and conditions").check()
    page.get_by_role("button", name="Create account").click()
    assert page.get_by_role("heading", name="Check your email").is_visible()

    page.goto(_last_link(live_server.outbox, "browser.driver@example.com"))
    # The link signs the new driver in (tests/test_confirmation_link.py); later logins use the password.
    assert "Your email address is confirmed and you are signed in" in page.content()
    assert page.get_by_role("heading", name="Hello Browser Driver").is_visible()
    page.get_by_role("button", name="Log out").click()
    page.goto(live_server.url + "/login")

    page.get_by_label("Email").fill("browser.driver@example.com")
    page.get_by_label("Password").fill("browser-password-1")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("heading", name="Hello Browser Driver").is_visible()
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    page.get_by_role("button", name="Log out").click()
    assert "You are logged out." in page.content()

    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("browser.driver@example.com")
    page.get_by_role("button", name="Send link").click()
    page.goto(_last_link(live_server.outbox, "browser.driver@example.com"))
    page.get_by_label("New password", exact=True).fill("browser-password-2")
    page.get_by_label("Repeat new password").fill("browser-password-2")
    page.get_by_role("button", name="Set new password").click()
    assert "Your password is changed" in page.content()

    page.get_by_label("Email").fill("browser.driver@example.com")
    page.get_by_label("Password").fill("browser-password-2")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("heading", name="Hello Browser Driver").is_visible()
