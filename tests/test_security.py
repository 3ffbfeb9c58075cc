"""CSRF, rate limits, security headers, session cookies, roles per door."""

from __future__ import annotations

import pytest

from app import create_app
from app.accounts.models import Role
from app.config import ConfigError
from tests.factories import PASSWORD, login, make_user
from tests.helpers import submit_form


def test_form_post_without_csrf_token_is_rejected(client):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "Bad request" in response.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302  # not logged in


def test_form_post_with_forged_csrf_token_is_rejected(client):
    response = client.post("/signup", data={"csrf_token": "forged", "email": "x@example.com"})
    assert response.status_code == 400


def test_login_rate_limit_answers_429_page(client):
    user = make_user()
    responses = [submit_form(client, "/login", {"email": user.email, "password": "wrong-password"}) for _ in range(11)]
    assert [response.status_code for response in responses[:10]] == [200] * 10
    assert responses[10].status_code == 429
    assert "Too many attempts" in responses[10].get_data(as_text=True)
    # Even the right password is refused while limited.
    assert submit_form(client, "/login", {"email": user.email, "password": PASSWORD}).status_code == 429


def test_reset_rate_limit(client):
    statuses = [submit_form(client, "/password/reset", {"email": "a@example.com"}).status_code for _ in range(6)]
    assert statuses[-1] == 429


def test_security_headers_and_cookie_flags(client):
    user = make_user()
    response = login(client, user)
    session_cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    headers = client.get("/dashboard").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_production_refuses_to_start_without_secrets(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://localhost/x")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app("production")
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="32 characters"):
        create_app("production")


def test_production_refuses_emulator_stripe_keys(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///:memory:")
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="STRIPE_API_KEY"):
        create_app("production")
    monkeypatch.setenv("STRIPE_API_KEY", "sk_live_x")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET"):
        create_app("production")


def test_production_uses_secure_cookies(monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_live_x")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_x")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///:memory:")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://emsp.example.com")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    app = create_app("production")
    assert app.config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize(
    ("role", "path", "expected"),
    [
        (Role.DRIVER, "/backoffice/", 403),
        (Role.DRIVER, "/backoffice/finance/", 403),
        (Role.SUPPORT, "/backoffice/", 200),
        (Role.SUPPORT, "/backoffice/support/", 200),
        (Role.SUPPORT, "/backoffice/finance/", 403),
        (Role.SUPPORT, "/backoffice/admin/audit", 403),
        (Role.FINANCE, "/backoffice/finance/", 200),
        (Role.FINANCE, "/backoffice/support/", 403),
        (Role.ADMIN, "/backoffice/support/", 200),
        (Role.ADMIN, "/backoffice/finance/", 200),
        (Role.ADMIN, "/backoffice/admin/audit", 200),
        (Role.SUPPORT, "/dashboard", 302),  # staff are sent to the back office, not the driver portal
        (Role.DRIVER, "/dashboard", 200),
    ],
)
def test_roles_per_door(client, role, path, expected):
    user = make_user(role)
    login(client, user)
    assert client.get(path).status_code == expected


def test_anonymous_is_sent_to_login(client):
    response = client.get("/backoffice/finance/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/backoffice/finance/")


def test_inactive_user_cannot_log_in(client):
    user = make_user()
    user.active = False
    response = submit_form(client, "/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 200
    assert "closed" in response.get_data(as_text=True)


def test_machine_doors_neither_read_nor_set_the_session_cookie(client):
    login(client, make_user())
    assert client.get_cookie("session") is not None
    # An OCPI call without a token and an unsigned Stripe webhook carry the browser's cookie here, yet neither
    # answers with a cookie (their session is never opened from the cookie nor saved).
    for response in (client.get("/ocpi/versions"), client.post("/webhooks/stripe", data=b"{}")):
        assert response.status_code >= 400
        assert "Set-Cookie" not in response.headers
    # The portal still has its session.
    assert client.get("/dashboard").status_code == 200
