"""Run localstripe (a Stripe API emulator) on a loopback port, in memory only: the embedded default for
``make run`` and the emulator the tests start.

``python -m localstripe`` listens on every interface and pickles its store to the shared
``/tmp/localstripe.pickle`` after each write (and reloads it at start), which would leak state between
concurrent test runs; this runner binds 127.0.0.1 and keeps the store in memory. It also teaches localstripe the
filters of the real API that our code uses (:func:`_list_setup_intents`).

Usage: python -m app.payments.emulator PORT
"""

from __future__ import annotations

import sys
from typing import Any

from aiohttp import web
from localstripe import resources, server


def _list_setup_intents(
    cls: Any,
    url: str,
    customer: str | None = None,
    payment_method: str | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
) -> Any:
    """``GET /v1/setup_intents?customer=...&payment_method=...``: Stripe filters by both; localstripe 1.15 refuses
    every filter of this list. The mandate backfill (app/payments/services.py) asks for it."""
    listing = resources.StripeObject._api_list_all.__func__(cls, url, limit=limit, starting_after=starting_after)
    listing._list = [
        intent
        for intent in listing._list
        if customer in (None, intent.customer) and payment_method in (None, intent.payment_method)
    ]
    return listing


def main() -> None:
    port = int(sys.argv[1])
    resources.Store.dump_to_disk = lambda self: None
    resources.SetupIntent._api_list_all = classmethod(_list_setup_intents)
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
