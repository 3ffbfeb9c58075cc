"""Getting a new CDR rated soon after it was stored, without making the CPO's request wait for it.

Without a Celery broker (the embedded default and the tests) tasks run eagerly, so the CDR is rated at once,
in the request that stored it. With a broker, each web process buffers the ids of its new CDRs and sends them
as one ``rating.rate_cdrs`` task per batch every ``RATING_DISPATCH_SECONDS`` (:mod:`app.batching`): one
broker message per CDR cost about as much CPU as storing the CDR. What this trades: a web process killed
without warning loses the ids of its last fraction of a second; those CDRs are stored and are priced by the
periodic ``rating.rate_pending`` task (every 5 minutes) instead.
"""

from __future__ import annotations

from flask import Flask, current_app

from app.batching import BackgroundBatcher, app_batcher
from app.extensions import celery
from app.roaming.cdr_listeners import add_cdr_listener

EXTENSION_KEY = "rating_dispatch"
MAX_BATCH = 200  # CDR ids per task: a worker rates a batch in well under a second


def listen_for_new_cdrs() -> None:
    """Called by ``app.rating.init_app``: roaming tells :func:`rate_soon` of every new CDR it stores over OCPI."""
    add_cdr_listener(rate_soon)


def rate_soon(cdr_id: int) -> None:
    """Have a newly stored (and committed) CDR rated."""
    from app.rating.tasks import rate_cdr_task

    if celery.conf.task_always_eager:
        rate_cdr_task.delay(cdr_id)
        return
    dispatcher_for(current_app).add(cdr_id)


def dispatcher_for(app: Flask) -> BackgroundBatcher[int]:
    return app_batcher(
        app,
        EXTENSION_KEY,
        lambda: BackgroundBatcher("rating-dispatch", _send, app.config["RATING_DISPATCH_SECONDS"], max_batch=MAX_BATCH),
    )


def _send(cdr_ids: list[int]) -> None:
    from app.rating.tasks import rate_cdrs_task

    rate_cdrs_task.delay(cdr_ids)
