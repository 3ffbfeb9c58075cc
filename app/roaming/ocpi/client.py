"""Outgoing OCPI calls to a partner: authentication, request/correlation ids, hub routing, envelope checks.

Every outgoing call goes through :class:`OcpiClient`, so the strict-out rules (base64 token per partner
setting, X-Request-ID, X-Correlation-ID, routing headers) live in one place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import requests
from flask import current_app

from app.roaming.models import Partner
from app.roaming.ocpi.auth import encode_token

DEFAULT_TIMEOUT = (5, 30)  # connect, read (seconds)


class OcpiClientError(RuntimeError):
    """The partner could not be reached, answered with an HTTP error, or broke the envelope."""

    def __init__(self, message: str, *, http_status: int | None = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status_code = status_code


@dataclass
class OcpiReply:
    http_status: int
    body: dict[str, Any]
    headers: requests.structures.CaseInsensitiveDict

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def status_code(self) -> int | None:
        return self.body.get("status_code")


class OcpiClient:
    def __init__(self, partner: Partner, *, token: str | None = None, session: requests.Session | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.partner = partner
        self.token = token if token is not None else partner.outgoing_token
        self.session = session or requests.Session()
        self.timeout = timeout

    def headers(self, *, to_country_code: str | None = None, to_party_id: str | None = None,
                correlation_id: str | None = None) -> dict[str, str]:
        config = current_app.config
        headers = {
            "Authorization": f"Token {encode_token(self.token or '', self.partner.send_base64_tokens)}",
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": correlation_id or str(uuid.uuid4()),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        # Routing headers: required through a hub, harmless peer to peer.
        headers["OCPI-from-country-code"] = config["COMPANY_COUNTRY_CODE"]
        headers["OCPI-from-party-id"] = config["COMPANY_PARTY_ID"]
        headers["OCPI-to-country-code"] = to_country_code or self.partner.country_code
        headers["OCPI-to-party-id"] = to_party_id or self.partner.party_id
        return headers

    def request(self, method: str, url: str, *, json: Any = None, params: dict[str, Any] | None = None,
                expect_envelope: bool = True, **header_options: Any) -> OcpiReply:
        try:
            response = self.session.request(method, url, json=json, params=params, timeout=self.timeout,
                                            headers=self.headers(**header_options))
        except requests.RequestException as exc:
            raise OcpiClientError(f"{method} {url} failed: {exc}") from exc
        try:
            body = response.json() if response.content else {}
        except ValueError as exc:
            raise OcpiClientError(f"{method} {url}: answer is not JSON (HTTP {response.status_code})",
                                  http_status=response.status_code) from exc
        if not isinstance(body, dict):
            raise OcpiClientError(f"{method} {url}: answer is not an OCPI envelope", http_status=response.status_code)
        if response.status_code >= 400:
            raise OcpiClientError(
                f"{method} {url}: HTTP {response.status_code} {body.get('status_message') or ''}".strip(),
                http_status=response.status_code, status_code=body.get("status_code"))
        status_code = body.get("status_code")
        if expect_envelope and (not isinstance(status_code, int) or not 1000 <= status_code < 2000):
            raise OcpiClientError(f"{method} {url}: OCPI status {status_code} {body.get('status_message') or ''}",
                                  http_status=response.status_code, status_code=status_code)
        return OcpiReply(response.status_code, body, response.headers)

    def get(self, url: str, **kwargs: Any) -> OcpiReply:
        return self.request("GET", url, **kwargs)

    def put(self, url: str, json: Any, **kwargs: Any) -> OcpiReply:
        return self.request("PUT", url, json=json, **kwargs)

    def patch(self, url: str, json: Any, **kwargs: Any) -> OcpiReply:
        return self.request("PATCH", url, json=json, **kwargs)

    def post(self, url: str, json: Any, **kwargs: Any) -> OcpiReply:
        return self.request("POST", url, json=json, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> OcpiReply:
        return self.request("DELETE", url, **kwargs)
