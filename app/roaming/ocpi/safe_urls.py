"""Which partner URLs we may fetch: the SSRF guard in front of every outgoing OCPI call.

A partner chooses the URLs we call (its credentials ``url``, every endpoint in its version details, every
``Link`` of a paged answer, every redirect). Left unchecked, one registration makes our server call
``http://127.0.0.1:5432/``, the cloud metadata service or any host of the private network, and report back what
it found. So a URL is fetched only when:

- its scheme is ``https`` (``http`` too where ``OCPI_REQUIRE_HTTPS`` is off: development and tests);
- it names a host and carries no ``user:password@`` (a classic way to make a URL look like another);
- *every* address its host resolves to is public — not loopback, private, link-local, shared (CGNAT),
  multicast, reserved or unspecified, also when wrapped in IPv6 (IPv4-mapped, NAT64, 6to4) — unless an entry
  of ``OCPI_ALLOWED_PRIVATE_HOSTS`` admits it (private peerings, the fake CPO of the tests).

The check works on resolved addresses, never on spellings: ``getaddrinfo`` turns ``0x7f000001``,
``2130706433``, ``127.1`` and ``0177.0.0.1`` into ``127.0.0.1`` before :mod:`ipaddress` judges it, so no
string pattern can be dodged. The transport (:mod:`app.roaming.ocpi.transport`) connects to the address
checked here — not to a second lookup of the name — which closes the DNS-rebinding gap (a name that resolves
to a public address for the check and to 127.0.0.1 for the connection), and it checks every redirect hop again.

Residual risks, accepted: a name that does not resolve is reported as "host not found", so an attacker can
learn whether a name exists in our DNS (never what it points to); an egress proxy is not supported (the pinned
connection is direct, ``*_PROXY`` variables are ignored on purpose — a proxy would resolve the name itself).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import SplitResult, urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int, float], list[str]]  # (host, port, timeout) -> addresses

DEFAULT_PORTS = {"http": 80, "https": 443}
# NAT64 (RFC 6052) carries an IPv4 address in its last 32 bits: 64:ff9b::7f00:1 reaches 127.0.0.1 through a
# NAT64 gateway. Python 3.11 does not count the prefix as private, so it is unwrapped here.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
# Shared address space (RFC 6598, carrier-grade NAT): not "private" for ipaddress, not public either.
SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")

# Reasons shown to callers: what kind of refusal, never which address the name resolved to.
NOT_A_URL = "not a valid URL"
HTTPS_REQUIRED = "https required"
ADDRESS_NOT_ALLOWED = "address not allowed"
HOST_NOT_FOUND = "host not found"


class UrlRefusedError(ValueError):
    """The URL may not be fetched. ``reason`` is safe to show to the partner; ``detail`` is for the log only."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class AllowedPrivate:
    """One entry of ``OCPI_ALLOWED_PRIVATE_HOSTS``: a host name or an address/CIDR, optionally with a port."""

    host: str | None = None
    network: IpNetwork | None = None
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> AllowedPrivate:
        """``10.0.0.0/8``, ``127.0.0.1``, ``127.0.0.1:8443``, ``::1``, ``[::1]:8443``, ``cpo.lan``, ``cpo.lan:8443``."""
        text = entry.strip()
        port: int | None = None
        if text.startswith("["):  # [IPv6]:port
            inside, bracket, rest = text[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(f"OCPI_ALLOWED_PRIVATE_HOSTS: cannot read {entry!r}")
            text, port = inside, _port(rest[1:], entry) if rest else None
        elif text.count(":") == 1:  # host:port or IPv4:port (a bare IPv6 address has several colons)
            text, _, port_text = text.partition(":")
            port = _port(port_text, entry)
        if not text:
            raise ValueError(f"OCPI_ALLOWED_PRIVATE_HOSTS: empty host in {entry!r}")
        try:
            return cls(network=ipaddress.ip_network(text, strict=False), port=port)
        except ValueError:
            return cls(host=_normalise_host(text), port=port)

    def admits(self, host: str, address: IpAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address.version == self.network.version and address in self.network
        return self.host == host


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"OCPI_ALLOWED_PRIVATE_HOSTS: bad port in {entry!r}")
    return int(text)


def _normalise_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


@dataclass(frozen=True)
class UrlPolicy:
    """What may be fetched. Built from the app config by :meth:`from_config`; tests build a strict one."""

    require_https: bool = True
    allowed_private: tuple[AllowedPrivate, ...] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> UrlPolicy:
        entries: Iterable[str] = config.get("OCPI_ALLOWED_PRIVATE_HOSTS") or ()
        return cls(
            require_https=bool(config.get("OCPI_REQUIRE_HTTPS", True)),
            allowed_private=tuple(AllowedPrivate.parse(entry) for entry in entries if entry.strip()),
        )

    def admits_private(self, host: str, address: IpAddress, port: int) -> bool:
        return any(entry.admits(host, address, port) for entry in self.allowed_private)


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that passed the guard, with the address the connection must go to (and no other)."""

    url: str
    scheme: str
    host: str  # as the server must see it (Host header, TLS name)
    port: int
    address: str  # the checked address to connect to


def is_public_address(address: IpAddress) -> bool:
    """True for an address on the public internet; IPv6 wrappers of IPv4 are judged by the IPv4 inside."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address in NAT64_PREFIX:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and not is_public_address(address.sixtofour):
            return False
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED_ADDRESS_SPACE:
        return False
    # is_global alone lets multicast through (224.0.0.0/4 is not "private"), hence the explicit list.
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


class _Lookup(TypedDict, total=False):
    """What the lookup thread of :func:`resolve` leaves: the addresses, or the error."""

    addresses: list[str]
    error: OSError | UnicodeError


def resolve(host: str, port: int, timeout: float) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection. getaddrinfo has no timeout of its own and a
    partner may control a slow name server, so the lookup runs in a daemon thread we stop waiting for."""
    try:
        return [str(ipaddress.ip_address(host))]  # a literal address in its usual spelling needs no lookup
    except ValueError:
        pass
    outcome: _Lookup = {}

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
            outcome["addresses"] = list(dict.fromkeys(str(info[4][0]) for info in infos))
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=lookup, name="ocpi-dns", daemon=True)
    worker.start()
    worker.join(max(timeout, 0.0))
    if worker.is_alive():
        raise TimeoutError(f"resolving {host} took longer than {timeout:.1f}s")
    if "error" in outcome:
        raise UrlRefusedError(HOST_NOT_FOUND, f"{host}: {outcome['error']}")
    return outcome["addresses"]


def check_url(url: str, policy: UrlPolicy, *, timeout: float = 5.0, resolver: Resolver | None = None) -> CheckedUrl:
    """Check ``url`` against ``policy``; raise :class:`UrlRefusedError` or return where to connect.

    Raises :class:`TimeoutError` when name resolution takes longer than ``timeout``."""
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefusedError(NOT_A_URL, f"{url!r}: scheme {scheme or 'missing'}")
    if policy.require_https and scheme != "https":
        raise UrlRefusedError(HTTPS_REQUIRED, f"{url!r}: plain http refused (OCPI_REQUIRE_HTTPS)")
    host = _normalise_host(parts.hostname or "")
    if not host:
        raise UrlRefusedError(NOT_A_URL, f"{url!r}: no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefusedError(NOT_A_URL, f"{url!r}: credentials in the URL")
    try:
        port = DEFAULT_PORTS[scheme] if parts.port is None else parts.port
    except ValueError as exc:
        raise UrlRefusedError(NOT_A_URL, f"{url!r}: {exc}") from exc
    if port == 0:
        raise UrlRefusedError(NOT_A_URL, f"{url!r}: port 0")
    addresses = (resolver or resolve)(host, port, timeout)  # looked up per call: tests stand in a name server
    if not addresses:
        raise UrlRefusedError(HOST_NOT_FOUND, f"{host}: no address")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
        if not is_public_address(address) and not policy.admits_private(host, address, port):
            raise UrlRefusedError(ADDRESS_NOT_ALLOWED, f"{url!r}: {host} resolves to {address}, not a public address")
    return CheckedUrl(url=url, scheme=scheme, host=host, port=port, address=addresses[0])


def same_origin(first: str, second: str) -> bool:
    """True when both URLs have the same scheme, host and port (default ports spelled or not)."""
    return _origin(first) == _origin(second)


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        return scheme, parts.hostname, -1  # a broken port matches nothing real
    return scheme, parts.hostname, DEFAULT_PORTS.get(scheme) if port is None else port


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise UrlRefusedError(NOT_A_URL, f"{url!r}: not a string without spaces or control characters")
    try:
        return urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced "[" in the host
        raise UrlRefusedError(NOT_A_URL, f"{url!r}: {exc}") from exc
