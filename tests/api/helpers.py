"""Calling the API as the app does: JSON in and out, a bearer token per signed-in device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.accounts import api_tokens
from app.accounts.models import Account, User
from app.extensions import db


@dataclass
class SignedIn:
    user: User
    device: api_tokens.ApiDevice
    access_token: str
    refresh_token: str

    @property
    def account(self) -> Account:
        assert self.user.account is not None
        return self.user.account

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def sign_in(user: User, device_name: str = "Test phone") -> SignedIn:
    """A device signed in through the service (the sign-in route itself is tested in test_auth)."""
    issued = api_tokens.sign_in_device(user, device_name)
    db.session.flush()
    return SignedIn(user, issued.device, issued.access_token, issued.refresh_token)


def call(
    client: FlaskClient, method: str, path: str, who: SignedIn | None = None, json: Any = None, **kwargs: Any
) -> TestResponse:
    headers = dict(kwargs.pop("headers", {}))
    if who is not None:
        headers.setdefault("Authorization", f"Bearer {who.access_token}")
    return client.open(path, method=method, json=json, headers=headers, **kwargs)


def problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """The problem document of ``response``, checked to be ``status`` / ``code`` (RFC 9457 members present)."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "application/problem+json", response.mimetype
    body = response.get_json()
    assert body["status"] == status and body["code"] == code, body
    assert body["title"] and body["type"] and body["message"] and "detail" in body, body
    return dict(body)
