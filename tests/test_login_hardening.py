"""Pen test, issue 12 (4, 5): the login is limited per account as well as per client address, and a hostile
``next`` is ignored instead of answering 500 (``POST /login?next=/%0d%0a...``)."""

from __future__ import annotations

import pytest

from app import config
from app.accounts.redirects import local_path_or_none
from tests.factories import PASSWORD, make_user
from tests.helpers import csrf_token_from


def _attempt_from(client, address: str, email: str, password: str):  # type: ignore[no-untyped-def]
    """A login attempt from client address ``address`` (the app trusts no proxy header: REMOTE_ADDR counts)."""
    environ = {"REMOTE_ADDR": address}
    token = csrf_token_from(client.get("/login", environ_base=environ).get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, "email": email, "password": password}, environ_base=environ)


def test_eleventh_attempt_on_one_account_from_other_addresses_is_refused(client):
    victim, bystander = make_user(), make_user()
    statuses = [
        _attempt_from(client, f"203.0.113.{n}", victim.email, "wrong-password").status_code for n in range(1, 11)
    ]
    assert statuses == [200] * 10
    # Typed otherwise, from yet another address: the same account.
    assert _attempt_from(client, "198.51.100.7", f"  {victim.email.upper()} ", "wrong-password").status_code == 429
    assert _attempt_from(client, "198.51.100.8", victim.email, PASSWORD).status_code == 429
    # Other accounts are not locked with it.
    assert _attempt_from(client, "198.51.100.9", bystander.email, PASSWORD).status_code == 302


def test_rate_limit_storage_is_shared_in_production(monkeypatch):
    for name in ("RATELIMIT_STORAGE_URI", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    assert config.production_rate_limit_storage_uri() == "memory://"
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://redis:6379/0")
    assert config.production_rate_limit_storage_uri() == "redis://redis:6379/0"
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://redis:6379/1")
    assert config.production_rate_limit_storage_uri() == "redis://redis:6379/1"
    assert config.TestConfig.RATELIMIT_STORAGE_URI == "memory://"


HOSTILE_NEXT = [
    "/\r\nSet-Cookie: session=evil",
    "//evil.example",
    "https://evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "/\tevil",
    "/dashboard\x00",
    "http:/evil.example",
    "",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_hostile_next_is_ignored_never_a_500(client, target):
    user = make_user()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", query_string={"next": target}, data={"csrf_token": token, "email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_raw_crlf_in_the_query_string_is_ignored(client):
    user = make_user()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login?next=/%0d%0aSet-Cookie:%20x=1", data={"csrf_token": token, "email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "x=1" not in " ".join(response.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize("target", ["/cards", "/invoices?page=2", "/sessions?month=2026-10&card=3"])
def test_same_site_next_is_followed(target):
    assert local_path_or_none(target) == target


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_hostile_next_is_refused(target):
    assert local_path_or_none(target) is None
