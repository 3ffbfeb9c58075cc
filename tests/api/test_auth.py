"""Signing the app in and out: tokens stored hashed, rotated, revocable; the login form's answers and limits."""

from __future__ import annotations

import datetime as dt

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts import api_tokens
from app.accounts.api_tokens import ApiDevice, RevokedReason, digest
from app.accounts.models import Role
from app.db import utcnow
from app.extensions import db
from tests.api.helpers import SignedIn, call, problem, sign_in
from tests.factories import PASSWORD, make_user
from tests.helpers import submit_form

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"


def _sign_in(client: FlaskClient, email: str, password: str = PASSWORD, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(TOKEN, json={"email": email, "password": password, "device_name": "Pixel 9"}, headers=headers)


def test_sign_in_gives_a_device_whose_tokens_are_stored_only_as_digests(
    client: FlaskClient, db_session: object
) -> None:
    user = make_user()
    response = _sign_in(client, user.email.upper())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["device"]["name"] == "Pixel 9" and body["device"]["current"] is True
    device = db.session.get(ApiDevice, body["device"]["id"])
    assert device is not None and device.user_id == user.id
    stored = {column: getattr(device, column) for column in ("access_token_hash", "refresh_token_hash")}
    assert stored == {
        "access_token_hash": digest(body["access_token"]),
        "refresh_token_hash": digest(body["refresh_token"]),
    }
    assert body["access_token"] not in str(stored) and body["refresh_token"].split(".")[1] not in str(stored)
    me = call(client, "GET", "/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.get_json()["email"] == user.email


def test_unknown_email_and_wrong_password_get_the_same_answer_after_the_same_work(
    client: FlaskClient, db_session: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user()
    verified = []
    real_verify = PasswordHasher.verify

    def counting_verify(self, hash, password):  # type: ignore[no-untyped-def]
        verified.append(1)
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    wrong = problem(_sign_in(client, user.email, "not-the-password"), 401, "invalid_credentials")
    wrong_work = len(verified)
    unknown = problem(_sign_in(client, "nobody@example.com", "not-the-password"), 401, "invalid_credentials")
    assert wrong_work == 1 and len(verified) == 2  # one argon2 verification each: no faster "unknown"
    assert {key: wrong[key] for key in ("message", "detail", "title")} == {
        key: unknown[key] for key in ("message", "detail", "title")
    }
    assert db.session.scalars(select(ApiDevice)).all() == []


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"role": Role.SUPPORT}, "staff_not_allowed"),
        ({"confirmed": False}, "email_unconfirmed"),
        ({"active": False}, "account_blocked"),
        ({"closed": True}, "account_closed"),
    ],
)
def test_who_may_not_use_the_app_learns_why_once_the_password_is_right(
    client: FlaskClient, db_session: object, setup: dict[str, object], code: str
) -> None:
    user = make_user(setup.get("role", Role.DRIVER), confirmed=bool(setup.get("confirmed", True)))  # type: ignore[arg-type]
    if setup.get("active") is False:
        user.active = False
    if setup.get("closed"):
        user.active = False
        assert user.account is not None
        user.account.closed_at = utcnow()
    db.session.flush()
    problem(_sign_in(client, user.email), 403, code)
    problem(_sign_in(client, user.email, "wrong-password-here"), 401, "invalid_credentials")  # nothing said
    assert db.session.scalars(select(ApiDevice)).all() == []
    assert user.last_login_at is None  # a refused sign-in is no login


def test_a_driver_blocked_after_signing_in_is_refused_at_the_next_call(client: FlaskClient, driver: SignedIn) -> None:
    assert call(client, "GET", "/api/v1/me", driver).status_code == 200
    driver.user.active = False
    db.session.flush()
    problem(call(client, "GET", "/api/v1/me", driver), 403, "account_blocked")
    assert driver.account.closed_at is None


def test_sign_in_is_rate_limited_per_address_and_per_account_with_the_login_form(
    app: Flask, client: FlaskClient, db_session: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LOGIN_ACCOUNT_RATE_LIMIT", "3 per minute")
    user = make_user()
    # Two guesses on the portal's login form and one in the app: the same account's counter.
    for _ in range(2):
        assert submit_form(client, "/login", {"email": user.email, "password": "guess-guess-guess"}).status_code == 200
    problem(_sign_in(client, user.email, "guess-guess-guess"), 401, "invalid_credentials")
    limited = problem(_sign_in(client, user.email), 429, "too_many_requests")
    assert limited["message"]
    other = make_user()
    assert _sign_in(client, other.email).status_code == 201  # another account is not held back


def test_the_address_limit_holds_whatever_the_email(
    app: Flask, client: FlaskClient, db_session: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "2 per minute")
    for number in range(2):
        problem(_sign_in(client, f"nobody{number}@example.com"), 401, "invalid_credentials")
    problem(_sign_in(client, "nobody9@example.com"), 429, "too_many_requests")


def test_refresh_rotates_and_the_old_refresh_token_dies(client: FlaskClient, driver: SignedIn) -> None:
    first = client.post(REFRESH, json={"refresh_token": driver.refresh_token})
    assert first.status_code == 200, first.get_json()
    pair = first.get_json()
    assert pair["refresh_token"] != driver.refresh_token and pair["access_token"] != driver.access_token
    assert pair["device"]["id"] == driver.device.id
    problem(call(client, "GET", "/api/v1/me", driver), 401, "invalid_token")  # the old access token died too
    new = {"Authorization": f"Bearer {pair['access_token']}"}
    assert client.get("/api/v1/me", headers=new).status_code == 200
    second = client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert second.status_code == 200


def test_an_old_refresh_token_used_again_signs_the_device_out(client: FlaskClient, driver: SignedIn) -> None:
    """Theft: the thief refreshed twice with a stolen token; the owner's app then uses its (old) one."""
    stolen = client.post(REFRESH, json={"refresh_token": driver.refresh_token}).get_json()
    thief = client.post(REFRESH, json={"refresh_token": stolen["refresh_token"]}).get_json()
    problem(client.post(REFRESH, json={"refresh_token": driver.refresh_token}), 401, "refresh_token_reused")
    db.session.refresh(driver.device)
    assert driver.device.revoked_reason == RevokedReason.REFRESH_REUSED
    problem(
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {thief['access_token']}"}), 401, "invalid_token"
    )
    problem(client.post(REFRESH, json={"refresh_token": thief["refresh_token"]}), 401, "invalid_token")


def test_a_refresh_that_lost_the_race_to_another_with_the_same_token_signs_the_device_out(
    driver: SignedIn,
) -> None:
    """Two refreshes with one token at once: the compare-and-swap lets one through; the other is a reuse."""
    device = driver.device
    # The concurrent refresh committed first: the digest in the database moved on after we read the row.
    real_execute = db.session.execute

    def racing_execute(statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        if getattr(statement, "is_update", False) and statement.table.name == "api_devices":
            real_execute(
                api_tokens.update(ApiDevice).where(ApiDevice.id == device.id).values(refresh_token_hash="0" * 64)
            )
        return real_execute(statement, *args, **kwargs)

    db.session.execute = racing_execute  # type: ignore[method-assign]
    try:
        with pytest.raises(api_tokens.RefreshTokenReusedError):
            api_tokens.refresh_tokens(driver.refresh_token)
    finally:
        del db.session.execute
    assert device.revoked_reason == RevokedReason.REFRESH_REUSED


def test_garbage_and_unknown_refresh_tokens_are_refused_without_harm(client: FlaskClient, driver: SignedIn) -> None:
    family = driver.refresh_token.split(".")[0]
    for token in ("x", "nope." + "a" * 43, "A" * 22 + "." + "b" * 43, driver.refresh_token + "x"):
        problem(client.post(REFRESH, json={"refresh_token": token}), 401, "invalid_token")
    assert call(client, "GET", "/api/v1/me", driver).status_code == 200  # nobody could end the device that way
    assert family == driver.device.refresh_family


def test_an_expired_access_token_says_so_and_the_refresh_token_mends_it(client: FlaskClient, driver: SignedIn) -> None:
    driver.device.access_expires_at = utcnow() - dt.timedelta(seconds=1)
    db.session.flush()
    expired = call(client, "GET", "/api/v1/me", driver)
    problem(expired, 401, "token_expired")
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    assert client.post(REFRESH, json={"refresh_token": driver.refresh_token}).status_code == 200


def test_an_expired_refresh_token_is_refused(client: FlaskClient, driver: SignedIn) -> None:
    driver.device.refresh_expires_at = utcnow() - dt.timedelta(seconds=1)
    db.session.flush()
    problem(client.post(REFRESH, json={"refresh_token": driver.refresh_token}), 401, "invalid_token")


def test_signing_out_ends_this_device_only(client: FlaskClient, driver: SignedIn) -> None:
    tablet = sign_in(driver.user, "Tablet")
    assert call(client, "DELETE", TOKEN, driver).status_code == 204
    problem(call(client, "GET", "/api/v1/me", driver), 401, "invalid_token")
    problem(client.post(REFRESH, json={"refresh_token": driver.refresh_token}), 401, "invalid_token")
    assert call(client, "GET", "/api/v1/me", tablet).status_code == 200


def test_the_device_list_and_signing_out_a_lost_phone(client: FlaskClient, driver: SignedIn) -> None:
    lost = sign_in(driver.user, "Lost phone")
    listed = call(client, "GET", "/api/v1/me/devices", driver).get_json()["items"]
    assert {(item["name"], item["current"]) for item in listed} == {("Test phone", True), ("Lost phone", False)}
    assert call(client, "DELETE", f"/api/v1/me/devices/{lost.device.id}", driver).status_code == 204
    problem(call(client, "GET", "/api/v1/me", lost), 401, "invalid_token")
    assert [item["name"] for item in call(client, "GET", "/api/v1/me/devices", driver).get_json()["items"]] == [
        "Test phone"
    ]
    problem(call(client, "DELETE", f"/api/v1/me/devices/{lost.device.id}", driver), 404, "device_not_found")


def test_no_token_or_a_wrong_scheme_is_a_401_with_the_challenge(client: FlaskClient, driver: SignedIn) -> None:
    for headers in ({}, {"Authorization": f"Basic {driver.access_token}"}, {"Authorization": "Bearer " + "x" * 500}):
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    problem(client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"}), 401, "invalid_token")


def test_a_portal_login_cookie_does_not_authenticate_the_api(client: FlaskClient, driver: SignedIn) -> None:
    from tests.factories import login

    login(client, driver.user)
    assert client.get("/profile").status_code == 200  # signed in to the portal
    problem(client.get("/api/v1/me"), 401, "token_missing")


def test_a_sign_in_beyond_the_device_limit_ends_the_least_recently_used(driver: SignedIn) -> None:
    driver.device.last_used_at = utcnow() - dt.timedelta(days=30)
    others = [sign_in(driver.user, f"Phone {number}") for number in range(api_tokens.MAX_LIVE_DEVICES_PER_USER)]
    live = api_tokens.live_devices_of(driver.user.id)
    assert len(live) == api_tokens.MAX_LIVE_DEVICES_PER_USER
    assert driver.device.revoked_reason == RevokedReason.TOO_MANY_DEVICES
    assert all(other.device.revoked_at is None for other in others)


def test_last_used_is_written_at_most_every_few_minutes(client: FlaskClient, driver: SignedIn) -> None:
    long_ago = utcnow() - dt.timedelta(minutes=10)
    driver.device.last_used_at = long_ago
    db.session.flush()
    assert call(client, "GET", "/api/v1/me", driver).status_code == 200
    db.session.refresh(driver.device)
    noted = driver.device.last_used_at
    assert noted - long_ago > dt.timedelta(minutes=9)
    assert call(client, "GET", "/api/v1/cards", driver).status_code == 200
    db.session.refresh(driver.device)
    assert driver.device.last_used_at == noted  # a call a moment later writes nothing
