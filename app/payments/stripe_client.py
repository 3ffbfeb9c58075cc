"""The one place that turns app config into a configured Stripe client.

We use an explicit ``stripe.StripeClient`` per app (not the module-level ``stripe.api_key``/``stripe.api_base``
globals), so two apps in one process (the test app and a live-server app, or real Stripe and a localstripe
emulator) never share settings. The client is cached per (key, base) and rebuilt when the config changes.
"""

from __future__ import annotations

import uuid
from typing import Any

import stripe
from flask import Flask, current_app

# Stripe answers in well under a second; a stuck connection must not hold a worker for the library's 80 s default.
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30.0  # unless STRIPE_READ_TIMEOUT_SECONDS says otherwise
# The library retries connection errors, time-outs, 409s and 5xx with exponential back-off; POSTs carry an
# idempotency key (ours, or one the library generates), so a retried create never creates twice, also when the
# first one reached Stripe and only its answer was lost (a time-out). A call that still fails is a StripeError
# (``APIConnectionError`` for a refused, reset or timed-out connection): collection makes it an outcome.
MAX_NETWORK_RETRIES = 2

_EXTENSION_KEY = "stripe_client"


def _build(api_key: str, api_base: str | None, read_timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=(CONNECT_TIMEOUT_SECONDS, read_timeout)),
    )


def stripe_client(app: Flask | None = None) -> stripe.StripeClient:
    """The Stripe client configured from ``app``'s config (``current_app`` by default)."""
    # Flask types current_app as a Flask, not as the werkzeug LocalProxy it is, so mypy cannot see this method.
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    api_key = app.config["STRIPE_API_KEY"]
    api_base = (app.config.get("STRIPE_API_BASE") or "").rstrip("/") or None
    read_timeout = float(app.config.get("STRIPE_READ_TIMEOUT_SECONDS") or READ_TIMEOUT_SECONDS)
    settings = (api_key, api_base, read_timeout)
    cached = app.extensions.get(_EXTENSION_KEY)
    if cached is None or cached[0] != settings:
        cached = (settings, _build(*settings))
        app.extensions[_EXTENSION_KEY] = cached
    return cached[1]


def reset_stripe_client(app: Flask) -> None:
    """Forget the cached client (after changing ``STRIPE_*`` config at runtime, e.g. in tests)."""
    app.extensions.pop(_EXTENSION_KEY, None)


def idempotency_key(*parts: object, unique: bool = False) -> str:
    """An idempotency key from natural parts (``customer``, account id, …); ``unique=True`` appends a random
    suffix for creates that are new on every call but must not double on a network retry."""
    key = "emsp-" + "-".join(str(part) for part in parts)
    return f"{key}-{uuid.uuid4().hex}" if unique else key


def stripe_field(obj: Any, name: str) -> Any:
    """A field of a Stripe object or of a plain dict (emulators, error bodies); ``None`` when it has none (Stripe
    omits fields, emulators more so)."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    try:
        return obj[name]
    except (KeyError, TypeError, AttributeError):
        return None
