"""Pen test, issue 12 (1): absolute links we mail out are built on the configured base URL, never on the request's
Host header (a forged ``Host: evil.example`` used to mail the victim a valid reset token pointing at evil.example).
"""

from __future__ import annotations

import re

import pytest

from app import create_app
from app.config import ConfigError
from app.public_urls import portal_url
from tests.factories import make_user
from tests.helpers import csrf_token_from
from tests.test_accounts import SIGNUP

FORGED = {"Host": "evil.example"}


def _submit_with_forged_host(client, url: str, data: dict[str, object]):  # type: ignore[no-untyped-def]
    page = client.get(url, headers=FORGED)
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data}, headers=FORGED)


def _links_in_last_mail(mailbox, address: str) -> list[str]:  # type: ignore[no-untyped-def]
    body = mailbox.to(address)[-1].get_body(("plain",)).get_content()
    assert "evil.example" not in body
    return re.findall(r"https?://\S+", body)


def test_password_reset_link_ignores_a_forged_host(client, mailbox):
    make_user(email="victim@example.com")
    response = _submit_with_forged_host(client, "/password/reset", {"email": "victim@example.com"})
    assert response.status_code == 302
    [link] = _links_in_last_mail(mailbox, "victim@example.com")
    assert link.startswith("http://localhost/password/reset/")


def test_signup_confirmation_link_ignores_a_forged_host(client, mailbox):
    response = _submit_with_forged_host(client, "/signup", {**SIGNUP, "email": "new@example.com"})
    assert response.status_code == 200
    [link] = _links_in_last_mail(mailbox, "new@example.com")
    assert link.startswith("http://localhost/confirm/")


def test_already_registered_mail_ignores_a_forged_host(client, mailbox):
    make_user(email="taken@example.com")
    _submit_with_forged_host(client, "/signup", {**SIGNUP, "email": "taken@example.com"})
    links = _links_in_last_mail(mailbox, "taken@example.com")
    assert links == ["http://localhost/login", "http://localhost/password/reset"]


def test_links_follow_the_configured_base_url_with_or_without_a_request(app, db_session):
    previous = app.config["PUBLIC_BASE_URL"]
    app.config["PUBLIC_BASE_URL"] = "https://emsp.example.com/portal/"
    try:
        assert portal_url("accounts.login") == "https://emsp.example.com/portal/login"  # a worker: no request
        with app.test_request_context("/", headers=FORGED):
            assert portal_url("accounts.confirm", token="t") == "https://emsp.example.com/portal/confirm/t"
    finally:
        app.config["PUBLIC_BASE_URL"] = previous


@pytest.fixture
def production_env(monkeypatch):  # type: ignore[no-untyped-def]
    for name, value in {
        "SECRET_KEY": "x" * 40,
        "DATABASE_URL": "sqlite:///:memory:",
        "STRIPE_API_KEY": "sk_live_x",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("PUBLIC_BASE_URL", "PORTAL_BASE_URL", "SERVER_NAME", "PREFERRED_URL_SCHEME"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_production_refuses_to_start_without_a_public_https_base_url(production_env):
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        create_app("production")
    production_env.setenv("PUBLIC_BASE_URL", "http://emsp.example.com")
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        create_app("production")
    production_env.delenv("PUBLIC_BASE_URL")
    production_env.setenv("SERVER_NAME", "emsp.example.com")  # https by default in production
    create_app("production")
