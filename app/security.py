"""HTTP security: the headers on every response, and no cookie session for the doors that authenticate with tokens
(OCPI, the Stripe webhook, the app API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin

# Stripe.js must be loaded from Stripe's own domain (PCI rules forbid self-hosting it); nothing else is remote.
# Stripe's CSP guide also lists its *.js.stripe.com subdomains for scripts and frames.
_CSP_DIRECTIVES: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "https://js.stripe.com", "https://*.js.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
    "connect-src": ["'self'", "https://api.stripe.com"],
    "img-src": ["'self'", "data:"],  # + the map's tile server (FINDER_TILE_URL), see tile_source()
    "style-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def _origin(url: str | None) -> str | None:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def tile_source(url_template: str | None) -> str | None:
    """The CSP source of the map's tile server, from its Leaflet URL template: the subdomain placeholder becomes a
    wildcard ("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png" → "https://*.tile.openstreetmap.org"). None
    when the host has another placeholder, which CSP cannot express: the tiles are then refused and the map page
    works as a list."""
    parts = urlsplit(url_template or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = parts.netloc
    if host.startswith("{") and "}." in host:
        host = "*." + host.split("}.", 1)[1]
    if "{" in host or "}" in host:
        return None
    return f"{parts.scheme}://{host}"


def content_security_policy(config: Mapping[str, Any]) -> str:
    """The policy for this app: the defaults plus the configured Stripe.js / Stripe API origins (a local
    localstripe emulator serves both from one origin) and the map's tile server."""
    directives = {name: list(sources) for name, sources in _CSP_DIRECTIVES.items()}
    js_origin = _origin(config.get("STRIPE_JS_URL"))
    api_origin = _origin(config.get("STRIPE_API_BASE"))
    for name, origin in (
        ("img-src", tile_source(config.get("FINDER_TILE_URL"))),
        ("script-src", js_origin),
        ("frame-src", js_origin),
        ("connect-src", js_origin),
        ("frame-src", api_origin),
        ("connect-src", api_origin),
    ):
        if origin and origin not in directives[name]:
            directives[name].append(origin)
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


CONTENT_SECURITY_POLICY = content_security_policy({})

# The headers depend on four settings only: built once per combination (tests change them on a running app).
_headers_by_settings: dict[tuple[Any, ...], tuple[tuple[str, str, str], ...]] = {}


def security_headers(config: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
    """The headers every response carries unless the view set its own: (name, lower-case name, value)."""
    key = (
        config.get("STRIPE_JS_URL"),
        config.get("STRIPE_API_BASE"),
        config.get("FINDER_TILE_URL"),
        bool(config.get("SESSION_COOKIE_SECURE")),
    )
    built = _headers_by_settings.get(key)
    if built is None:
        headers = [
            ("Content-Security-Policy", content_security_policy(config)),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
            ("Permissions-Policy", "geolocation=(self), camera=(), microphone=()"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
        ]
        if config.get("SESSION_COOKIE_SECURE"):
            headers.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
        built = _headers_by_settings[key] = tuple((name, name.lower(), value) for name, value in headers)
    return built


def add_security_headers(response: Response) -> Response:
    # One pass over the response's headers: a setdefault per header scanned the list each time (and werkzeug
    # raises and catches a KeyError for every missing one).
    headers = response.headers
    present = {name.lower() for name in headers.keys()}  # noqa: SIM118  # iterating Headers gives (name, value)
    for name, lowered, value in security_headers(current_app.config):
        if lowered not in present:
            headers.add(name, value)
    if carries_private_data(response, present):
        # Neither the browser's disk cache (a shared computer: Back after logout) nor a proxy may keep it.
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def carries_private_data(response: Response, header_names: set[str] | None = None) -> bool:
    """A download (invoice PDF/UBL, sessions CSV, data export), an answer to an authenticated call (OCPI, API), or
    any page for a logged-in user. Static files are public, whoever asks. ``header_names``: the response's header
    names in lower case, when the caller has them."""
    if request.endpoint == "static":
        return False
    downloaded = (
        "content-disposition" in header_names if header_names is not None else "Content-Disposition" in response.headers
    )
    if downloaded or "Authorization" in request.headers:
        return True
    return _someone_is_logged_in()


def _someone_is_logged_in() -> bool:
    from flask_login import current_user

    if "_login_user" not in g and "_user_id" not in session:
        # Nobody asked who is logged in and the session names nobody: an anonymous request, answered without
        # loading a user (a remember-me cookie alone restores a login only when a page asks for the user).
        return False
    return bool(current_user.is_authenticated)


def register_security_headers(app: Flask) -> None:
    app.after_request(add_security_headers)
    app.session_interface = TokenDoorsWithoutSession()


def is_machine_request() -> bool:
    return request.path.startswith(MACHINE_PATH_PREFIXES)


def is_cookieless_request() -> bool:
    return request.path.startswith(COOKIELESS_PATH_PREFIXES)


# OCPI partners and Stripe authenticate every request with a token or a signature and never hold a cookie.
MACHINE_PATH_PREFIXES = ("/ocpi/", "/webhooks/")
# The driver's app API authenticates with its bearer token only (app/api/auth.py): a portal cookie never counts
# there, and its language comes from the token's account or Accept-Language (app/api/problems.py), so it has no use
# for the cookie session either.
COOKIELESS_PATH_PREFIXES = (*MACHINE_PATH_PREFIXES, "/api/")


class TokenDoorsWithoutSession(SecureCookieSessionInterface):
    """Skips the signed-cookie session for :data:`COOKIELESS_PATH_PREFIXES`: building the signer and reading the
    cookie on every OCPI or API request cost a noticeable part of a real-time authorization's budget, and of every
    API call's. Such requests get an empty session that is never saved (no Set-Cookie)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if is_cookieless_request():
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if is_cookieless_request():
            return
        super().save_session(app, session, response)
