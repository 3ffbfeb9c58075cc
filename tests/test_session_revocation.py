"""Pen test, issue 12 (3): logging out ends the login on the server. A copy of the old session cookie or of the
remember-me cookie (valid a year) used to open /dashboard after logout."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from tests.factories import PASSWORD, login, make_user
from tests.helpers import submit_form

REMEMBER = "remember_token"


def _log_in_remembered(client: FlaskClient, user) -> str:  # type: ignore[no-untyped-def]
    response = submit_form(client, "/login", {"email": user.email, "password": PASSWORD, "remember": "y"})
    assert response.status_code == 302
    cookie = client.get_cookie(REMEMBER)
    assert cookie is not None
    return cookie.value


def _with_only(app: Flask, name: str, value: str) -> FlaskClient:
    """A browser holding nothing but a copy of one cookie."""
    browser = app.test_client()
    browser.set_cookie(name, value)
    return browser


def _is_sent_to_login(client: FlaskClient) -> bool:
    response = client.get("/dashboard")
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_old_session_cookie_is_refused_after_logout(client):
    login(client, make_user())
    old_session = client.get_cookie("session").value
    assert submit_form(client, "/logout", {}, form_url="/dashboard").status_code == 302
    client.set_cookie("session", old_session)
    assert _is_sent_to_login(client)


def test_old_remember_cookie_is_refused_after_logout(app, client):
    remember = _log_in_remembered(client, make_user())
    assert _with_only(app, REMEMBER, remember).get("/dashboard").status_code == 200  # it does log in before
    submit_form(client, "/logout", {}, form_url="/dashboard")
    assert _is_sent_to_login(_with_only(app, REMEMBER, remember))


def test_remember_cookie_is_new_at_each_login(app, client):
    user = make_user()
    first = _log_in_remembered(client, user)
    second = _log_in_remembered(app.test_client(), user)  # the same second, another browser
    assert first != second
    submit_form(client, "/logout", {}, form_url="/dashboard")
    third = _log_in_remembered(client, user)
    assert third not in (first, second)
    assert _with_only(app, REMEMBER, third).get("/dashboard").status_code == 200
    assert _is_sent_to_login(_with_only(app, REMEMBER, second))  # ended by the logout in between


def test_remember_cookie_older_than_its_duration_is_refused(app, client):
    remember = _log_in_remembered(client, make_user())
    previous = app.config["REMEMBER_COOKIE_DURATION"]
    app.config["REMEMBER_COOKIE_DURATION"] = -1  # as if the year had passed, whatever the browser kept
    try:
        assert _is_sent_to_login(_with_only(app, REMEMBER, remember))
    finally:
        app.config["REMEMBER_COOKIE_DURATION"] = previous


def test_sign_out_everywhere_ends_every_session(app, client):
    user = make_user()
    login(client, user)
    laptop = app.test_client()
    remember = _log_in_remembered(laptop, user)
    profile = client.get("/profile").get_data(as_text=True)
    assert "/profile/sign-out-everywhere" in profile
    response = submit_form(client, "/profile/sign-out-everywhere", {}, form_url="/profile")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert _is_sent_to_login(client)
    assert _is_sent_to_login(laptop)
    assert _is_sent_to_login(_with_only(app, REMEMBER, remember))


def test_password_reset_ends_existing_sessions(app, client, mailbox):
    user = make_user(email="reset-me@example.com")
    login(client, user)
    elsewhere = app.test_client()
    submit_form(elsewhere, "/password/reset", {"email": "reset-me@example.com"})
    link = mailbox.last_link("reset-me@example.com")
    submit_form(elsewhere, link, {"password": "brand-new-password", "password_repeat": "brand-new-password"})
    assert _is_sent_to_login(client)


def test_a_deactivated_user_is_logged_out_at_the_next_request(client):
    user = make_user()
    login(client, user)
    user.active = False
    db.session.flush()
    assert _is_sent_to_login(client)
