"""The sign-up email's link confirms the address and signs the driver in, once; when it cannot (expired, already
used, someone else signed in, damaged) the page says what to do, with a link to ask for a new one."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app.accounts import links
from app.accounts.models import User
from app.extensions import db
from tests.factories import login, make_user
from tests.helpers import submit_form
from tests.test_accounts import SIGNUP

EMAIL = "nieuwe.rijder@example.com"


def _signed_up(client, mailbox) -> str:  # type: ignore[no-untyped-def]
    submit_form(client, "/signup?lang=en", {**SIGNUP, "language": "en"})
    return mailbox.last_link(EMAIL)


def _user() -> User:
    user = db.session.scalar(select(User).where(User.email == EMAIL))
    assert user is not None
    return user


def test_the_link_confirms_and_signs_the_driver_in(client, mailbox):
    link = _signed_up(client, mailbox)
    response = client.get(link)
    assert response.status_code == 302
    assert _user().is_confirmed
    dashboard = client.get("/dashboard")
    assert dashboard.status_code == 200 and "Nieuwe Rijder" in dashboard.get_data(as_text=True)


def test_a_used_link_signs_nobody_in_and_says_to_log_in(client, mailbox):
    link = _signed_up(client, mailbox)
    client.get(link)
    submit_form(client, "/logout", {}, form_url="/dashboard")
    again = client.get(link)
    html = again.get_data(as_text=True)
    assert again.status_code == 200 and "already used" in html and 'href="/login"' in html
    assert client.get("/dashboard").status_code == 302  # still signed out


def test_an_expired_link_changes_nothing_and_offers_a_new_one(app, client, mailbox, monkeypatch):
    link = _signed_up(client, mailbox)
    monkeypatch.setitem(app.config, "CONFIRM_TOKEN_MAX_AGE", 1)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)  # itsdangerous reads the clock through time.time
    response = client.get(link)
    html = response.get_data(as_text=True)
    assert "expired" in html and 'href="/confirm"' in html
    monkeypatch.undo()
    assert not _user().is_confirmed
    assert client.get("/dashboard").status_code == 302


def test_a_damaged_link_offers_a_new_one(client, mailbox):
    link = _signed_up(client, mailbox)
    html = client.get(link[:-4] + "abcd").get_data(as_text=True)
    assert "does not work" in html and 'href="/confirm"' in html
    assert not _user().is_confirmed


def test_someone_else_signed_in_keeps_the_link_for_later(client, mailbox):
    link = _signed_up(client, mailbox)
    other = make_user(email="partner@example.com")
    login(client, other)
    html = client.get(link).get_data(as_text=True)
    assert "partner@example.com" in html and EMAIL in html and "Log out" in html
    assert not _user().is_confirmed  # the link still works once the other person logged out
    submit_form(client, "/logout", {}, form_url="/dashboard")
    assert client.get(link).status_code == 302
    assert _user().is_confirmed


@pytest.mark.parametrize("language", ["nl", "fr"])
def test_the_pages_follow_the_language(client, mailbox, language):
    link = _signed_up(client, mailbox)
    client.get(link)
    submit_form(client, "/logout", {}, form_url="/dashboard")
    page = client.get(f"{link}?lang={language}")
    assert f'<html lang="{language}">' in page.get_data(as_text=True)


def test_a_link_for_an_address_since_changed_is_refused(client, mailbox):
    _signed_up(client, mailbox)
    user = _user()
    token = links.make_confirm_token(user.id, "old-address@example.com")
    html = client.get(f"/confirm/{token}").get_data(as_text=True)
    assert "does not work" in html
    assert not _user().is_confirmed


def test_a_link_opened_in_another_browser_confirms_but_signs_nobody_in(app, client, mailbox):
    """Login CSRF: someone who signs up with their own address and sends the link to a victim must not get the
    victim signed into that account (where the victim might save their own payment card)."""
    link = _signed_up(client, mailbox)
    victim = app.test_client()
    html = victim.get(link).get_data(as_text=True)
    assert "Your email address is confirmed" in html and "does not sign you in here" in html
    assert _user().email_confirmed_at is not None
    assert victim.get("/dashboard").status_code == 302  # not signed in
    assert client.get(link).status_code == 200  # used now: not even the sign-up browser is signed in by it


def test_a_link_asked_for_again_signs_in_the_browser_that_asked(app, client, mailbox):
    _signed_up(client, mailbox)
    laptop = app.test_client()
    submit_form(laptop, "/confirm", {"email": EMAIL.upper()})
    link = mailbox.last_link(EMAIL)
    assert laptop.get(link).status_code == 302
    assert laptop.get("/dashboard").status_code == 200
