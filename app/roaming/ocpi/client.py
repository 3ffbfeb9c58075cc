"""Outgoing OCPI calls to a partner: authentication, request/correlation ids, hub routing, envelope checks.

Every outgoing call goes through :class:`OcpiClient`, so the strict-out rules (base64 token per partner
setting, X-Request-ID, X-Correlation-ID, routing headers) live in one place — and so does the SSRF guard: the
HTTP underneath is :func:`app.roaming.ocpi.transport.fetch` (public HTTPS addresses only, checked after DNS and
on every redirect, with timeouts and a deadline from the configuration).

An :class:`OcpiClientError` says what kind of failure it was ("timed out", "address not allowed", "HTTP 502
from partner", "not an OCPI answer"), never what the server answered: that goes to the log, because the URL
may have been chosen by an attacker and the answer may come from a service inside our network. Its ``outcome``
(:class:`CallOutcome`) says what the failure means for the request itself: never sent, received and refused,
answered with success but unreadably, or unknown (it may have been received and acted upon). Callers whose
requests have effects in the world (a command starting a session) must not treat "unknown" as "failed".

Partners' answers are read tolerantly (real CPOs, issue 13): the envelope's keys in another case
(``Status_code``), a ``status_code`` sent as a string of digits, and ``data`` wrapped in a one-item list where
one object is expected (:attr:`OcpiReply.object`, :func:`single_object`, :func:`ci_field`).
"""

from __future__ import annotations

import enum
import json as json_module
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from flask import current_app
from requests.structures import CaseInsensitiveDict

from app.roaming.models import Partner
from app.roaming.ocpi.auth import encode_token
from app.roaming.ocpi.safe_urls import UrlPolicy
from app.roaming.ocpi.transport import COULD_NOT_CONNECT, Deadline, FetchError, FetchLimits, fetch

log = logging.getLogger(__name__)

NOT_AN_OCPI_ANSWER = "not an OCPI answer"
LOGGED_BODY_CHARS = 500  # enough of an answer in the log to see what it was


class CallOutcome(enum.StrEnum):
    """What a failed call means for the request: did the partner get it, and did it act on it?"""

    NOT_SENT = "not_sent"  # it never reached the partner: URL refused by our guard, no connection made
    REFUSED = "refused"  # the partner received it and refused it (HTTP 4xx, OCPI 2xxx): nothing was done
    UNREADABLE = "unreadable"  # HTTP success, but the answer is not an OCPI envelope: received, outcome unread
    UNKNOWN = "unknown"  # timeout, connection lost, HTTP 5xx, OCPI 3xxx: it may have been received and done


class OcpiClientError(RuntimeError):
    """The partner could not be reached, answered with an HTTP error, or broke the envelope.

    ``reason`` is the kind of failure, safe to show to anyone; ``str()`` adds the method and the URL we were
    asked to call (not where redirects led). ``retryable`` is False when the URL itself is refused. ``outcome``
    says whether the partner got the request (see :class:`CallOutcome`)."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        status_code: int | None = None,
        reason: str | None = None,
        retryable: bool = True,
        outcome: CallOutcome = CallOutcome.UNKNOWN,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status_code = status_code
        self.reason = reason or message
        self.retryable = retryable
        self.outcome = outcome


def ci_field(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]``, else the value under the one key that equals ``name`` ignoring ASCII case (``Result``,
    ``TIMEOUT``): OCPI field names are lower-case, some partners' serializers are not. None when absent or when
    several spellings are present (we would have to guess)."""
    if name in obj:
        return obj[name]
    wanted = name.lower()
    found = [value for key, value in obj.items() if isinstance(key, str) and key.lower() == wanted]
    return found[0] if len(found) == 1 else None


def single_object(data: Any) -> dict[str, Any] | None:
    """``data`` where one object is expected: the object, or the only object of a one-item list (a real quirk:
    ``"data": [{"result": "ACCEPTED", "timeout": 30}]``). None for anything else."""
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    return data if isinstance(data, dict) else None


def envelope_status_code(body: Mapping[str, Any]) -> int | None:
    """The OCPI ``status_code`` of an answer: an int, or a string of digits; None when there is none."""
    value = ci_field(body, "status_code")
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 4:
        value = int(value.strip())
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class OcpiReply:
    http_status: int
    body: dict[str, Any]
    headers: CaseInsensitiveDict[str]

    @property
    def data(self) -> Any:
        return ci_field(self.body, "data")

    @property
    def object(self) -> dict[str, Any] | None:
        """``data`` read as one object (unwrapped from a one-item list); None when it is not one."""
        return single_object(self.data)

    @property
    def status_code(self) -> int | None:
        return envelope_status_code(self.body)


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
        follow_redirects: bool = True,
        **header_options: Any,
    ) -> OcpiReply:
        """One call. ``follow_redirects=False`` answers a redirect with an error (outcome unknown). "Never sent"
        is certain when the failure comes on the first hop or after only 307/308 answers (the transport tells:
        ``FetchError.maybe_processed``)."""
        config = current_app.config
        limits = FetchLimits.from_config(config)
        if not follow_redirects:
            limits = replace(limits, max_redirects=0)
        try:
            fetched = fetch(
                method,
                url,
                headers=self.headers(**header_options),
                json=json,
                params=params,
                policy=UrlPolicy.from_config(config),
                limits=limits,
                deadline=self.deadline,
            )
        except FetchError as exc:
            # Refused by our guard, or no connection made, on the first hop or after only 307/308 answers ("not
            # processed here, send it there"): nobody processed the request.
            never_sent = not exc.maybe_processed and (not exc.retryable or exc.reason == COULD_NOT_CONNECT)
            raise self._failure(
                method,
                url,
                exc.reason,
                exc.detail,
                retryable=exc.retryable,
                outcome=CallOutcome.NOT_SENT if never_sent else CallOutcome.UNKNOWN,
            ) from exc
        status = fetched.status
        try:
            body = json_module.loads(fetched.content) if fetched.content else {}
        except ValueError:
            body = None
        status_code = envelope_status_code(body) if isinstance(body, dict) else None
        if status >= 400:
            raise self._failure(
                method,
                url,
                f"HTTP {status} from partner",
                _answer(fetched.content),
                http_status=status,
                status_code=status_code,
                outcome=CallOutcome.REFUSED if status < 500 else CallOutcome.UNKNOWN,
            )
        if not isinstance(body, dict):
            raise self._failure(
                method,
                url,
                NOT_AN_OCPI_ANSWER,
                f"HTTP {status}: {_answer(fetched.content)}",
                http_status=status,
                outcome=_unread_outcome(status),
            )
        if expect_envelope and (status_code is None or not 1000 <= status_code < 2000):
            known = status_code is not None and 2000 <= status_code < 4000
            raise self._failure(
                method,
                url,
                f"OCPI status {status_code} from partner" if known else NOT_AN_OCPI_ANSWER,
                _answer(fetched.content),
                http_status=status,
                status_code=status_code,
                outcome=_status_outcome(status_code) if known else _unread_outcome(status),
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


def _status_outcome(status_code: int | None) -> CallOutcome:
    """OCPI 2xxx: the partner could not process what we sent (nothing done); 3xxx: it broke while doing so."""
    return CallOutcome.REFUSED if status_code is not None and status_code < 3000 else CallOutcome.UNKNOWN


def _unread_outcome(http_status: int) -> CallOutcome:
    """An answer without a readable OCPI status: an HTTP success still says the request was received."""
    return CallOutcome.UNREADABLE if 200 <= http_status < 300 else CallOutcome.UNKNOWN


def _answer(content: bytes) -> str:
    """The beginning of an answer, for the log."""
    text = content[:LOGGED_BODY_CHARS].decode("utf-8", "replace")
    return repr(text) + (" …" if len(content) > LOGGED_BODY_CHARS else "")
