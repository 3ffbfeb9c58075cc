"""Outgoing OCPI calls to a partner: authentication, request/correlation ids, hub routing, envelope checks.

Every outgoing call goes through :class:`OcpiClient`, so the strict-out rules (base64 token per partner
setting, X-Request-ID, X-Correlation-ID, routing headers) live in one place — and so does the SSRF guard: the
HTTP underneath is :func:`app.roaming.ocpi.transport.fetch` (public HTTPS addresses only, checked after DNS and
on every redirect, with timeouts and a deadline from the configuration).

An :class:`OcpiClientError` says what kind of failure it was ("timed out", "address not allowed", "HTTP 502
from partner", "not an OCPI answer"), never what the server answered: that goes to the log, because the URL
may have been chosen by an attacker and the answer may come from a service inside our network.
"""

from __future__ import annotations

import json as json_module
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from flask import current_app
from requests.structures import CaseInsensitiveDict

from app.roaming.models import Partner
from app.roaming.ocpi.auth import encode_token
from app.roaming.ocpi.safe_urls import UrlPolicy
from app.roaming.ocpi.transport import Deadline, FetchError, FetchLimits, fetch

log = logging.getLogger(__name__)

NOT_AN_OCPI_ANSWER = "not an OCPI answer"
LOGGED_BODY_CHARS = 500  # enough of an answer in the log to see what it was


class OcpiClientError(RuntimeError):
    """The partner could not be reached, answered with an HTTP error, or broke the envelope.

    ``reason`` is the kind of failure, safe to show to anyone; ``str()`` adds the method and the URL we were
    asked to call (not where redirects led). ``retryable`` is False when the URL itself is refused."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        status_code: int | None = None,
        reason: str | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status_code = status_code
        self.reason = reason or message
        self.retryable = retryable


@dataclass
class OcpiReply:
    http_status: int
    body: dict[str, Any]
    headers: CaseInsensitiveDict[str]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def status_code(self) -> int | None:
        return self.body.get("status_code")


class OcpiClient:
    """Calls one partner. ``deadline`` bounds a sequence of calls (the handshake) on top of each call's own."""

    def __init__(self, partner: Partner, *, token: str | None = None, deadline: Deadline | None = None) -> None:
        self.partner = partner
        self.token = token if token is not None else partner.outgoing_token
        self.deadline = deadline

    def headers(
        self, *, to_country_code: str | None = None, to_party_id: str | None = None, correlation_id: str | None = None
    ) -> dict[str, str]:
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

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        expect_envelope: bool = True,
        **header_options: Any,
    ) -> OcpiReply:
        config = current_app.config
        try:
            fetched = fetch(
                method,
                url,
                headers=self.headers(**header_options),
                json=json,
                params=params,
                policy=UrlPolicy.from_config(config),
                limits=FetchLimits.from_config(config),
                deadline=self.deadline,
            )
        except FetchError as exc:
            raise self._failure(method, url, exc.reason, exc.detail, retryable=exc.retryable) from exc
        status = fetched.status
        try:
            body = json_module.loads(fetched.content) if fetched.content else {}
        except ValueError:
            body = None
        if status >= 400:
            status_code = body.get("status_code") if isinstance(body, dict) else None
            raise self._failure(
                method,
                url,
                f"HTTP {status} from partner",
                _answer(fetched.content),
                http_status=status,
                status_code=status_code,
            )
        if not isinstance(body, dict):
            raise self._failure(
                method, url, NOT_AN_OCPI_ANSWER, f"HTTP {status}: {_answer(fetched.content)}", http_status=status
            )
        status_code = body.get("status_code")
        if expect_envelope and (not isinstance(status_code, int) or not 1000 <= status_code < 2000):
            reason = f"OCPI status {status_code} from partner" if isinstance(status_code, int) else NOT_AN_OCPI_ANSWER
            raise self._failure(
                method,
                url,
                reason,
                _answer(fetched.content),
                http_status=status,
                status_code=status_code if isinstance(status_code, int) else None,
            )
        return OcpiReply(status, body, fetched.headers)

    def _failure(self, method: str, url: str, reason: str, detail: str, **details: Any) -> OcpiClientError:
        """The error for the caller (the kind of failure) after the full story went to the log."""
        log.warning("OCPI %s %r to partner %r failed: %s — %s", method, url, self.partner.name, reason, detail)
        return OcpiClientError(f"{method} {url}: {reason}", reason=reason, **details)

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


def _answer(content: bytes) -> str:
    """The beginning of an answer, for the log."""
    text = content[:LOGGED_BODY_CHARS].decode("utf-8", "replace")
    return repr(text) + (" …" if len(content) > LOGGED_BODY_CHARS else "")
