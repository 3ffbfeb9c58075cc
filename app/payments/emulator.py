"""Run localstripe (a Stripe API emulator) on a loopback port, in memory only: the embedded default for
``make run`` and the emulator the tests start.

``python -m localstripe`` listens on every interface and pickles its store to the shared
``/tmp/localstripe.pickle`` after each write (and reloads it at start), which would leak state between
concurrent test runs; this runner binds 127.0.0.1 and keeps the store in memory. It also teaches localstripe the
filters of the real API that our code uses (:func:`_list_setup_intents`, :func:`_list_payment_intents`) and,
with ``--idempotent``, Stripe's idempotent requests (:func:`_idempotent`), which localstripe ignores: a charge
retried after a time-out must find the first one (``tests/faults/test_stripe_outage.py``); there
``DELETE /_config/idempotency_keys`` makes it forget them, as Stripe does after 24 hours. That is off by
default: the suite's emulator lives for the whole session while each test's database is rolled back, so account
ids and invoice numbers, and with them our idempotency keys, come again with other parameters (real Stripe would
refuse those too, for 24 hours).

Usage: python -m app.payments.emulator PORT [--idempotent]
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError


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


def _list_payment_intents(
    cls: Any,
    url: str,
    customer: str | None = None,
    limit: int | None = None,
    starting_after: str | None = None,
) -> Any:
    """``GET /v1/payment_intents?customer=...``: Stripe lists a customer's PaymentIntents; localstripe 1.15 refuses
    every filter of this list. Collection looks there for the PaymentIntent of an attempt whose answer an outage
    took away (app/billing/collection/outages.py). Paged as localstripe pages: oldest first (Stripe: newest)."""
    listing = resources.StripeObject._api_list_all.__func__(cls, url, limit=limit, starting_after=starting_after)
    listing._list = [intent for intent in listing._list if customer in (None, intent.customer)]
    return listing


# (API key, Idempotency-Key) → (path and body of the first request, its answer): kept until forgotten (Stripe
# keeps them 24 hours; ``DELETE /_config/idempotency_keys`` forgets them all, as 24 hours later).
_answers: dict[tuple[str, str], tuple[tuple[str, bytes], web.Response]] = {}
_in_flight: dict[tuple[str, str], asyncio.Lock] = {}


@web.middleware
async def _idempotent(request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
    """Stripe's idempotent requests: a POST with an ``Idempotency-Key`` that was seen before is not executed again;
    the first request's answer is replayed (header ``Idempotent-Replayed: true``), and the same key with other
    parameters is refused (400 ``idempotency_error``). A request with a key still executing waits for it."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    scope = (request.headers.get("Authorization", ""), key)
    fingerprint = (request.path, await request.read())
    async with _in_flight.setdefault(scope, asyncio.Lock()):
        if scope in _answers:
            first, answer = _answers[scope]
            if first != fingerprint:
                error = {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same parameters they were "
                    "first used with.",
                }
                return web.json_response({"error": error}, status=400)
            return web.Response(
                body=answer.body,
                status=answer.status,
                content_type=answer.content_type,
                headers={"Idempotent-Replayed": "true"},
            )
        try:
            response = await handler(request)
        except UserError as error:
            response = error.to_response()
        if isinstance(response, web.Response) and response.status != 401:  # Stripe keeps what it executed
            _answers[scope] = (fingerprint, response)
        return response


async def _forget_idempotency_keys(request: web.Request) -> web.Response:
    """``DELETE /_config/idempotency_keys``: forget every idempotent request, as Stripe does 24 hours after it: a
    request sent again with its key is executed again (``tests/faults/test_stripe_outage_resume.py``)."""
    forgotten = len(_answers)
    _answers.clear()
    return web.json_response({"forgotten": forgotten})


def main() -> None:
    port = int(sys.argv[1])
    resources.Store.dump_to_disk = lambda self: None
    resources.SetupIntent._api_list_all = classmethod(_list_setup_intents)
    resources.PaymentIntent._api_list_all = classmethod(_list_payment_intents)
    if "--idempotent" in sys.argv[2:]:
        server.app.middlewares.insert(1, _idempotent)  # after the error middleware, before authentication
        server.app.router.add_delete("/_config/idempotency_keys", _forget_idempotency_keys)
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
