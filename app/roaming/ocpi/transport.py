"""HTTP for outgoing OCPI calls: only to guarded URLs, pinned to the checked address, within a deadline.

:func:`fetch` is the one place a partner URL turns into a connection:

- every hop (the first URL and each redirect target) passes :func:`app.roaming.ocpi.safe_urls.check_url`, and
  the connection goes to the address that check approved, never to a fresh lookup of the name (no DNS
  rebinding); the TLS certificate is still verified against the host name;
- redirects are followed here, not by a library, at most ``max_redirects`` times, with the method and body
  rules of ``requests`` (302 and 303 turn anything but HEAD into GET, 301 turns POST into GET, and only
  307/308 resend the body). Each target passes the guard before anything is sent to it. A redirect to another
  origin is refused when the request carries credentials (``Authorization``) or a body: every OCPI call does
  (see :meth:`_Hop.redirected` for why refusing beats following without the token);
- each hop has a connect and a read timeout, and the whole call a deadline. Socket timeouts alone cannot
  enforce a deadline (a server that sends one byte every few seconds never trips them), so a watchdog timer
  shuts the socket down when the deadline passes and the blocked read returns at once;
- the answer is read up to ``max_bytes``;
- failures become :class:`FetchError` with a short ``reason`` meant for the partner or the operator ("timed
  out", "address not allowed") and a ``detail`` meant for the log only: the error text must not turn us into
  a port scanner or echo what an internal service answered.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.certs import where as ca_bundle_path  # type: ignore[attr-defined]  # undeclared re-export in requests
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.connection import create_connection

from app.roaming.ocpi.safe_urls import (
    NOT_A_URL,
    CheckedUrl,
    UrlPolicy,
    UrlRefusedError,
    check_url,
    same_origin,
)

# Reasons shown to callers (besides the refusals of safe_urls).
TIMED_OUT = "timed out"
COULD_NOT_CONNECT = "could not connect"
TLS_FAILED = "TLS handshake failed"
CONNECTION_FAILED = "connection failed"
TOO_MANY_REDIRECTS = "too many redirects"
REDIRECT_LEAVES_ORIGIN = "redirect to another origin refused"
ANSWER_TOO_LARGE = "answer too large"

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
REPEAT_REQUEST_STATUSES = frozenset({307, 308})  # same method, same body
BODY_HEADERS = ("Content-Length", "Content-Type", "Transfer-Encoding")
READ_CHUNK = 64 * 1024


class FetchError(RuntimeError):
    """A call failed. ``reason`` may be shown to the caller; ``detail`` goes to the log only. ``retryable`` is
    False when trying again cannot help (the URL itself is refused). ``maybe_processed`` is True when an earlier
    hop answered a redirect that may follow a processed request (301/302/303: "done, see there"); after only
    307/308 answers (or none) nobody processed the request yet, so a failure on the next hop means never done."""

    def __init__(self, reason: str, detail: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.retryable = retryable
        self.maybe_processed = False


class Deadline:
    """A point in (monotonic) time a call, or a sequence of calls, must be finished by."""

    def __init__(self, not_after: float) -> None:
        self.not_after = not_after

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.not_after - time.monotonic()

    def earliest(self, other: Deadline | None) -> Deadline:
        return self if other is None or self.not_after <= other.not_after else other


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    call_seconds: float = 20.0  # the whole call, redirects included
    max_redirects: int = 3
    max_bytes: int = 32 * 1024 * 1024

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FetchLimits:
        return cls(
            connect_timeout=float(config["OCPI_CONNECT_TIMEOUT"]),
            read_timeout=float(config["OCPI_READ_TIMEOUT"]),
            call_seconds=float(config["OCPI_CALL_DEADLINE"]),
            max_redirects=int(config["OCPI_MAX_REDIRECTS"]),
            max_bytes=int(config["OCPI_MAX_RESPONSE_BYTES"]),
        )


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: CaseInsensitiveDict[str]
    content: bytes
    url: str  # where the answer came from, after redirects


def fetch(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    policy: UrlPolicy,
    limits: FetchLimits,
    json: Any = None,
    params: Mapping[str, Any] | None = None,
    deadline: Deadline | None = None,
) -> Fetched:
    """Send one request to a partner, following redirects ourselves; raise :class:`FetchError` on failure."""
    deadline = Deadline.after(limits.call_seconds).earliest(deadline)
    try:
        prepared = requests.Request(method.upper(), url, headers=dict(headers), json=json, params=params).prepare()
    except (requests.RequestException, ValueError) as exc:
        raise FetchError(NOT_A_URL, f"{url!r}: {exc}", retryable=False) from exc
    # requests types prepared headers as str | bytes: ours are str (``headers``), and so are those it adds
    # (Content-Type, Content-Length).
    prepared_headers = {name: value for name, value in prepared.headers.items() if isinstance(value, str)}
    assert len(prepared_headers) == len(prepared.headers)
    hop = _Hop(prepared.url or url, prepared.method or method.upper(), prepared.body, prepared_headers)
    checked = _check(hop.url, policy, limits, deadline)
    maybe_processed = False
    try:
        for redirects in range(limits.max_redirects + 1):
            status, response_headers, content = _send(checked, hop, limits, deadline)
            location = response_headers.get("Location")
            if status not in REDIRECT_STATUSES or not location:
                return Fetched(status, response_headers, content, hop.url)
            maybe_processed = maybe_processed or status not in REPEAT_REQUEST_STATUSES
            if redirects == limits.max_redirects:
                break
            target = _redirect_target(hop.url, location)
            checked = _check(target, policy, limits, deadline)  # the guard first: an internal target is named so
            hop = hop.redirected(status, target)
        raise FetchError(TOO_MANY_REDIRECTS, f"{method} {url}: more than {limits.max_redirects} redirects")
    except FetchError as exc:
        exc.maybe_processed = maybe_processed
        raise


def _redirect_target(current_url: str, location: str) -> str:
    """The absolute, normalised URL a ``Location`` points to (IDNA host, quoted path, as requests would)."""
    target = requests.models.PreparedRequest()
    try:
        target.prepare_url(urljoin(current_url, location), None)
    except (requests.RequestException, ValueError) as exc:
        raise FetchError(NOT_A_URL, f"redirect from {current_url} to {location!r}: {exc}", retryable=False) from exc
    return target.url or location


@dataclass(frozen=True)
class _Hop:
    url: str
    method: str
    body: Any
    headers: dict[str, str]

    def redirected(self, status: int, target: str) -> _Hop:
        """The request to send to ``target`` after a ``status`` redirect (the rules of requests' Session).

        Our token for a partner is for that partner's origin only, and so is what we send it: a redirect to
        another origin is refused (not retryable) when the request carries credentials or a body. Following it
        without the token would be useless and misleading: every OCPI module requires the token, so the other
        host answers 401 and the operator chases the wrong failure; and a 307/308 would resend the body, which
        can hold secrets meant for the partner alone (a credentials object carries the token it uses to call
        us). A request with neither (no OCPI call) may follow it: it hands the other host nothing."""
        method, body, headers = self.method, self.body, dict(self.headers)
        if (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST"):
            method = "GET"
        if status not in REPEAT_REQUEST_STATUSES:
            body = None
            for name in BODY_HEADERS:
                headers.pop(name, None)
        credentials = any(name.lower() == "authorization" for name in headers)
        if not same_origin(self.url, target) and (credentials or body is not None):
            raise FetchError(
                REDIRECT_LEAVES_ORIGIN,
                f"{self.method} {self.url}: HTTP {status} to {target}, another origin",
                retryable=False,
            )
        return _Hop(target, method, body, headers)


def _check(url: str, policy: UrlPolicy, limits: FetchLimits, deadline: Deadline) -> CheckedUrl:
    remaining = deadline.remaining()
    if remaining <= 0:
        raise FetchError(TIMED_OUT, f"{url}: deadline passed before the call")
    try:
        return check_url(url, policy, timeout=min(limits.connect_timeout, remaining))
    except UrlRefusedError as exc:
        raise FetchError(exc.reason, exc.detail, retryable=False) from exc
    except TimeoutError as exc:
        raise FetchError(TIMED_OUT, f"{url}: {exc}") from exc


def _send(
    checked: CheckedUrl, hop: _Hop, limits: FetchLimits, deadline: Deadline
) -> tuple[int, CaseInsensitiveDict[str], bytes]:
    remaining = deadline.remaining()
    if remaining <= 0:
        raise FetchError(TIMED_OUT, f"{hop.url}: deadline passed")
    timeout = urllib3.Timeout(connect=min(limits.connect_timeout, remaining), read=min(limits.read_timeout, remaining))
    with _Watchdog(remaining) as watchdog:
        pool = _pool_for(checked, timeout, watchdog.watch)
        response = None
        try:
            response = pool.urlopen(
                hop.method,
                _path_of(checked.url),
                body=hop.body,
                headers=hop.headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
            )
            headers = CaseInsensitiveDict(dict(response.headers))
            redirect = response.status in REDIRECT_STATUSES and "Location" in headers
            content = b"" if redirect else _read_bounded(response, limits.max_bytes, hop.url)
            return response.status, headers, content
        except (HTTPError, OSError, ValueError) as exc:  # ValueError: e.g. a header urllib3 cannot encode
            raise _failure(exc, watchdog.expired, checked) from exc
        finally:
            if response is not None:
                response.release_conn()
            pool.close()


def _read_bounded(response: urllib3.BaseHTTPResponse, max_bytes: int, url: str) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(ANSWER_TOO_LARGE, f"{url}: Content-Length {declared} > {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.stream(READ_CHUNK, decode_content=True):
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(ANSWER_TOO_LARGE, f"{url}: more than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _failure(exc: BaseException, deadline_passed: bool, checked: CheckedUrl) -> FetchError:
    where = f"{checked.url} ({checked.address}:{checked.port})"
    if deadline_passed or isinstance(exc, (ReadTimeoutError, TimeoutError)):
        return FetchError(TIMED_OUT, f"{where}: {exc!r}")
    if isinstance(exc, NewConnectionError):
        return FetchError(COULD_NOT_CONNECT, f"{where}: {exc!r}")
    if isinstance(exc, ConnectTimeoutError):
        return FetchError(TIMED_OUT, f"{where}: {exc!r}")
    if isinstance(exc, SSLError):
        return FetchError(TLS_FAILED, f"{where}: {exc!r}")
    return FetchError(CONNECTION_FAILED, f"{where}: {exc!r}")


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class _Watchdog:
    """Shuts down the connection of one hop when its time is up, so a trickling server cannot outlast the
    deadline: the read blocked in the calling thread then fails at once.

    It keeps a duplicate of each socket's descriptor: shutdown() acts on the connection behind any of its
    descriptors, and the duplicate stays valid when TLS takes the original over (``wrap_socket`` detaches it),
    so the TLS handshake is covered too, and no thread-unsafe TLS object is touched from the timer thread."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._duplicates: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        with self._lock:
            for duplicate in self._duplicates:
                duplicate.close()
            self._duplicates.clear()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            duplicate = sock.dup()
            self._duplicates.append(duplicate)
            if self.expired:
                _shut_down(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for duplicate in self._duplicates:
                _shut_down(duplicate)


def _shut_down(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the peer is gone already
        sock.shutdown(socket.SHUT_RDWR)


if TYPE_CHECKING:
    # What the mixin is always combined with (below): it reads the connection's settings and raises its errors.
    _ConnectionBase = HTTPConnection
else:
    _ConnectionBase = object


class _PinnedConnectionMixin(_ConnectionBase):
    """Connects to the address the guard approved instead of resolving the host name again; the name still
    serves as Host header, TLS server name and certificate name."""

    def __init__(
        self, *args: Any, pinned_address: str, on_socket: Callable[[socket.socket], None], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._pinned_address = pinned_address
        self._on_socket = on_socket

    def _new_conn(self) -> socket.socket:
        try:
            sock = create_connection(
                (self._pinned_address, self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"connecting to {self._pinned_address} timed out") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"connecting to {self._pinned_address} failed: {exc}") from exc
        self._on_socket(sock)
        return sock


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


def _pool_for(
    checked: CheckedUrl, timeout: urllib3.Timeout, on_socket: Callable[[socket.socket], None]
) -> urllib3.HTTPConnectionPool:
    """A one-connection pool for one hop: no connection is reused across hops or calls, so every
    connection was made to an address checked for this very hop."""
    common: dict[str, Any] = {
        "timeout": timeout,
        "maxsize": 1,
        "block": False,
        "retries": False,
        "pinned_address": checked.address,
        "on_socket": on_socket,
    }
    if checked.scheme == "https":
        return _PinnedHTTPSPool(
            checked.host, checked.port, cert_reqs="CERT_REQUIRED", ca_certs=ca_bundle_path(), **common
        )
    return _PinnedHTTPPool(checked.host, checked.port, **common)
