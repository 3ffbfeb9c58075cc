"""Roaming fixtures: a registered partner with a known token, an OCPI test client, and the fake CPO."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from app.db import utcnow
from app.extensions import db
from app.roaming.models import Partner, PartnerStatus
from app.roaming.ocpi.auth import hash_token
from tests.roaming.fake_cpo import FakeCpo, start_fake_cpo

PARTNER_TOKEN = "partner-token-c-for-tests"


def add_registered_hub(token: str, name: str = "Test Hub", country_code: str = "DE", party_id: str = "HUB") -> Partner:
    """A hub registered with us (flushed): it calls us with ``token`` and relays for the parties it announces."""
    hub = Partner(
        name=name,
        is_hub=True,
        country_code=country_code,
        party_id=party_id,
        status=PartnerStatus.REGISTERED,
        incoming_token_hash=hash_token(token),
        registered_at=utcnow(),
        version="2.2.1",
        endpoints=[],
    )
    db.session.add(hub)
    db.session.flush()
    return hub


@pytest.fixture
def partner(db_session) -> Partner:  # type: ignore[no-untyped-def]
    """A CPO (NL/TCP) registered with us; it calls us with PARTNER_TOKEN."""
    registered = Partner(
        name="Test CPO",
        country_code="NL",
        party_id="TCP",
        status=PartnerStatus.REGISTERED,
        incoming_token_hash=hash_token(PARTNER_TOKEN),
        outgoing_token="our-token-for-them",
        registered_at=utcnow(),
        version="2.2.1",
        endpoints=[],
    )
    db.session.add(registered)
    db.session.flush()
    return registered


class OcpiTestClient:
    """Calls our OCPI endpoints like a partner would: token header (base64 by default), JSON bodies."""

    def __init__(self, client, token: str = PARTNER_TOKEN, base64_token: bool = True) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.token = token
        self.base64_token = base64_token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        value = base64.b64encode(self.token.encode()).decode() if self.base64_token else self.token
        headers = {"Authorization": f"Token {value}", "X-Request-ID": "req-1", "X-Correlation-ID": "corr-1"}
        headers.update(extra or {})
        return headers

    def call(self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.client.open(path, method=method, json=json, headers=self.headers(headers), **kwargs)

    def get(self, path: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.call("GET", path, **kwargs)

    def put(self, path: str, json: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.call("PUT", path, json=json, **kwargs)

    def patch(self, path: str, json: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.call("PATCH", path, json=json, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.call("POST", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.call("DELETE", path, **kwargs)


@pytest.fixture
def ocpi(client, partner) -> OcpiTestClient:  # type: ignore[no-untyped-def]
    return OcpiTestClient(client)


@pytest.fixture
def fake_cpo() -> Iterator[FakeCpo]:
    running = start_fake_cpo()
    try:
        yield running.cpo
    finally:
        running.stop()
