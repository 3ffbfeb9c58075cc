"""New CDRs are sent for rating in batches through a real broker (Redis): one ``rating.rate_cdrs`` message for
many CDRs, nothing on the request path but a buffer append."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import redis

from app import create_app
from app.rating.queueing import dispatcher_for, rate_soon
from app.roaming.cdr_listeners import AFTER_CDR_STORED
from tests.billing.test_celery_worker import BROKER, CONFIGURED
from tests.helpers import listens


def test_rating_listens_for_the_cdrs_roaming_stores(app):
    """``create_app`` plugs rating in (``app.rating.init_app``): every new CDR of ours posted over OCPI is
    queued with :func:`rate_soon`, once however many apps the process built."""
    assert AFTER_CDR_STORED.count(rate_soon) == 1


# Skipped only on a machine with no broker configured and no local Redis; a configured broker that does not
# answer fails the test (CI sets CELERY_BROKER_URL to its local Redis).
@pytest.mark.skipif(not CONFIGURED and not listens(BROKER), reason="no CELERY_BROKER_URL and no local Redis")
def test_new_cdrs_reach_the_broker_as_one_batch(app):
    assert listens(BROKER), f"CELERY_BROKER_URL={BROKER} does not answer"
    queue = f"test-{uuid.uuid4().hex[:8]}"  # our own queue: no worker consumes it
    broker_app = create_app(
        "test",
        SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
        CELERY_BROKER_URL=BROKER,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        RATING_DISPATCH_SECONDS=60,
    )
    client = redis.Redis.from_url(BROKER)
    try:
        with broker_app.app_context():
            for cdr_id in (11, 12, 13):
                rate_soon(cdr_id)
            assert client.llen(queue) == 0  # buffered, not sent per CDR
            assert dispatcher_for(broker_app).flush() == 3
        [raw] = client.lrange(queue, 0, -1)
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        assert message["headers"]["task"] == "rating.rate_cdrs" and args == [[11, 12, 13]] and kwargs == {}
    finally:
        client.delete(queue)
