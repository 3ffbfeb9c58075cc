"""Absolute links we hand out (emails, OCPI URLs, pagination links), built from configuration only.

The request's ``Host`` header is chosen by whoever sends the request: a link built from it (``url_for(...,
_external=True)``, ``request.host_url``) lets an attacker have us mail a victim a valid reset token pointing at
the attacker's host. Every absolute link is therefore built on ``PUBLIC_BASE_URL`` (``OCPI_BASE_URL`` for the
partners' door when it differs), with or without a request, so web processes and workers build the same links.

Every URL a roaming partner gets from us (credentials ``url``, versions and endpoints, a command's
``response_url``, the ``Link`` of our paginated Sender interfaces, a CDR's ``Location``) is built on one setting,
:func:`ocpi_base_url`. A URL the partner only calls back *later* (a command's ``response_url``) is taken from
:func:`partner_reachable_ocpi_base_url`, which refuses a base a partner can never reach: none configured, or a
loopback address (``localhost``, ``127.0.0.1``, ``::1``) outside development and tests. A CPO told to post a
command's result to ``http://localhost:5000`` starts the session and its result is lost.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, request

# Where a loopback base URL is what is meant: a partner simulator on the same machine, the tests.
LOCAL_ENVIRONMENTS = frozenset({"development", "test"})


class PublicUrlNotConfiguredError(RuntimeError):
    """No base URL is configured (production refuses to start without one, see ``app.config``)."""


class PublicUrlUnreachableError(PublicUrlNotConfiguredError):
    """The configured base URL is one a partner can never reach (a loopback address outside development)."""


def is_valid_base_url(value: str | None) -> bool:
    """An absolute http(s) URL without query or fragment, e.g. ``https://emsp.example.com`` or ``.../app``."""
    if not value:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.query and not parts.fragment


def portal_base_url() -> str:
    """Where drivers reach the portal (links in emails)."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not is_valid_base_url(base):
        raise PublicUrlNotConfiguredError("set PUBLIC_BASE_URL (e.g. https://emsp.example.com) to build links")
    return str(base).rstrip("/")


def is_loopback_url(value: str) -> bool:
    """Whether the URL's host is this machine: ``localhost`` (and ``*.localhost``), 127.0.0.0/8, ``::1``, an
    IPv4-mapped loopback, or the unspecified address (``0.0.0.0``, ``::``)."""
    host = (urlsplit(value).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def ocpi_base_url() -> str:
    """Where roaming partners reach us: ``OCPI_BASE_URL`` when the OCPI door has its own host, else the portal's.

    An ``OCPI_BASE_URL`` that is set but not a base URL (``ocpi.example.com``, no scheme) is an error, not a
    silent fall-back to the portal's host: partners would be handed a host the operator did not mean."""
    configured = current_app.config.get("OCPI_BASE_URL")
    if not configured:
        return portal_base_url()
    if not is_valid_base_url(configured):
        raise PublicUrlNotConfiguredError(
            f"OCPI_BASE_URL {str(configured)[:100]!r} is not a base URL (e.g. https://ocpi.emsp.example.com)"
        )
    return str(configured).rstrip("/")


def partner_reachable_ocpi_base_url() -> str:
    """:func:`ocpi_base_url`, for a URL a partner will call back on its own (a command's ``response_url``):
    refused with :class:`PublicUrlUnreachableError` when it is a loopback address outside development and tests,
    with :class:`PublicUrlNotConfiguredError` when there is none."""
    base = ocpi_base_url()
    environment = current_app.config.get("APP_ENV")
    if is_loopback_url(base) and environment not in LOCAL_ENVIRONMENTS:
        raise PublicUrlUnreachableError(
            f"the OCPI base URL {base} is this machine, which no partner can reach (APP_ENV {environment}): "
            "set OCPI_BASE_URL (or PUBLIC_BASE_URL) to the public https:// address of our OCPI door"
        )
    return base


def url_on(base_url: str, endpoint: str, **values: Any) -> str:
    """The absolute URL of ``endpoint`` under ``base_url`` (scheme, host and an optional path prefix)."""
    parts = urlsplit(base_url)
    current_app.inject_url_defaults(endpoint, values)
    adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme)
    return adapter.build(endpoint, values, force_external=True)


def portal_url(endpoint: str, **values: Any) -> str:
    """``url_for(endpoint, **values, _external=True)``, but on the configured portal base URL."""
    return url_on(portal_base_url(), endpoint, **values)


def ocpi_url(endpoint: str, **values: Any) -> str:
    """An absolute URL of our OCPI door, on the configured base URL."""
    return url_on(ocpi_base_url(), endpoint, **values)


def ocpi_url_of_current_path() -> str:
    """The current request's path (no query) on the configured OCPI base URL, e.g. for a ``Link`` header."""
    return ocpi_base_url() + request.path
