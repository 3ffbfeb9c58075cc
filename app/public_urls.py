"""Absolute links we hand out (emails, OCPI URLs, pagination links), built from configuration only.

The request's ``Host`` header is chosen by whoever sends the request: a link built from it (``url_for(...,
_external=True)``, ``request.host_url``) lets an attacker have us mail a victim a valid reset token pointing at
the attacker's host. Every absolute link is therefore built on ``PUBLIC_BASE_URL`` (``OCPI_BASE_URL`` for the
partners' door when it differs), with or without a request, so web processes and workers build the same links.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, request


class PublicUrlNotConfiguredError(RuntimeError):
    """No base URL is configured (production refuses to start without one, see ``app.config``)."""


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


def ocpi_base_url() -> str:
    """Where roaming partners reach us: ``OCPI_BASE_URL`` when the OCPI door has its own host, else the portal's."""
    configured = current_app.config.get("OCPI_BASE_URL")
    return str(configured).rstrip("/") if is_valid_base_url(configured) else portal_base_url()


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
