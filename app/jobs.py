"""Celery bound to the Flask app: every task runs inside an app context.

Without a broker (the tests, a plain ``flask`` command) tasks run inline (eager), so the same code path works on a
laptop and on many worker machines. ``make run`` starts a worker and beat on an embedded broker (kombu's SQLAlchemy
transport on ``instance/celery-broker.sqlite3``, a SQLite file of its own) or on Redis when ``CELERY_BROKER_URL``
is set, and the web process queues to it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

import sqlalchemy as sa
from celery import Task
from flask import Flask, has_app_context

from app.config import ConfigError
from app.extensions import celery

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class TaskResult(Protocol[R_co]):
    """What ``delay`` hands back (Celery's ``AsyncResult``, or ``EagerResult`` when tasks run inline)."""

    def get(self, timeout: float | None = None) -> R_co: ...


class CeleryTask(Protocol[P, R_co]):
    """A function made a Celery task by :func:`task`, as its callers use it: called directly (runs here and
    now) or queued with ``delay`` (runs on a worker; inline when there is no broker)."""

    name: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> TaskResult[R_co]: ...


def task(name: str, **options: Any) -> Callable[[Callable[P, R]], CeleryTask[P, R]]:
    """``@celery.task(name=..., **options)`` with types: Celery ships none, so the decorated function would
    otherwise be untyped to its callers. For plain tasks (not ``bind=True``, whose function takes the task as
    its first argument)."""
    decorator: Callable[[Callable[P, R]], CeleryTask[P, R]] = celery.task(name=name, **options)
    return decorator


class FlaskTask(Task):  # type: ignore[misc]  # celery is untyped: Task is Any to mypy
    """Runs in the caller's app context when there is one (eager mode, tests), else in the worker's app."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return self.run(*args, **kwargs)
        flask_app: Flask = celery.conf["flask_app"]
        with flask_app.app_context():
            return self.run(*args, **kwargs)


def _forget_broker_state() -> None:
    """The Celery object is process-wide and caches what it built from its first configuration: the broker
    connection pool and, in ``celery.amqp``, the queues and router (the default queue). A second app in the
    same process with another broker or queue (a test, a script) would otherwise still send to the old ones, so
    both are dropped and rebuilt from the new configuration on next use."""
    celery._pool = None
    celery.__dict__.pop("amqp", None)


# kombu's SQLAlchemy transport on a SQLite file: the broker `make run` starts when CELERY_BROKER_URL is not set.
EMBEDDED_BROKER_SCHEME = "sqla+sqlite:"
# How long a SQLite connection of the embedded broker waits for another (the web process publishing while the
# worker polls); pysqlite's default is 5 s.
EMBEDDED_BROKER_BUSY_TIMEOUT_SECONDS = 30
# The embedded broker marks a delivered message invisible and keeps its row (kombu's SQLAlchemy transport has no
# delete on ack): without this purge the file grows by every beat tick, forever.
PURGE_SCHEDULE = {"jobs-purge-delivered-messages": {"task": "jobs.purge_delivered_messages", "schedule": 3600.0}}
PURGE_DELIVERED_AFTER = dt.timedelta(hours=1)


# Brokers that are Redis (kombu's redis transport, plain or over TLS, or through Sentinel).
REDIS_SCHEMES = ("redis://", "rediss://", "sentinel://")


def is_embedded_broker(broker_url: str | None) -> bool:
    return bool(broker_url) and str(broker_url).startswith(EMBEDDED_BROKER_SCHEME)


def is_redis_broker(broker_url: str | None) -> bool:
    return str(broker_url or "").startswith(REDIS_SCHEMES)


def _transport_options(app: Flask, broker_url: str | None) -> dict[str, Any]:
    """What the broker's transport is told beyond its URL.

    Embedded broker: kombu passes ``connect_args`` to ``create_engine`` for its SQLite file.

    Redis: a task is acknowledged only when it is done (``task_acks_late``); until then Redis keeps it in its
    *unacked* set, and a worker that dies without a word (SIGKILL, the machine lost) never gives it back. Any
    worker's sweep (at its start, then every ~100 s) puts back a task unacknowledged for longer than
    ``visibility_timeout``, for another worker to run again (each task is idempotent). kombu's default is an hour;
    ``CELERY_BROKER_VISIBILITY_TIMEOUT`` (30 min) brings a dead worker's tasks back sooner, yet must stay longer
    than the longest countdown a task is retried with (mail: 16 min), since a worker holds a task with a countdown
    unacknowledged until it is due: shorter, and Redis would hand it to a second worker as well. A task still
    running after it is handed out again too: harmless (every task is idempotent), but done twice. See
    docs/deploy.md."""
    if is_embedded_broker(broker_url):
        return {"connect_args": {"timeout": EMBEDDED_BROKER_BUSY_TIMEOUT_SECONDS}}
    if is_redis_broker(broker_url):
        return {"visibility_timeout": int(app.config["CELERY_BROKER_VISIBILITY_TIMEOUT"])}
    return {}


def init_celery(app: Flask) -> None:
    broker = app.config.get("CELERY_BROKER_URL")
    queue = app.config.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
    broker_url = broker or "memory://"
    options = _transport_options(app, broker)
    current = (celery.conf.broker_write_url, celery.conf.task_default_queue, celery.conf.broker_transport_options)
    if current != (broker_url, queue, options):
        _forget_broker_state()
    embedded = is_embedded_broker(broker)
    celery.conf.update(
        # Celery's own `broker_url` prefers the CELERY_BROKER_URL environment variable over its configuration, so
        # an app created with another broker (a test beside a CI that exports Redis, a script) would send there.
        # Publishing and consuming go through the read and write URLs, which take the app's configuration first.
        broker_url=broker_url,
        broker_read_url=broker_url,
        broker_write_url=broker_url,
        broker_transport_options=options,
        result_backend=app.config.get("CELERY_RESULT_BACKEND") or None,
        task_always_eager=not broker,
        task_eager_propagates=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_default_queue=queue,
        timezone="UTC",
        flask_app=app,
        emsp_beat_intervals=dict(app.config.get("CELERY_BEAT_INTERVALS") or {}),
    )
    if embedded:
        add_beat_schedule(PURGE_SCHEDULE)
    app.extensions["celery"] = celery


def add_beat_schedule(schedule: dict[str, dict[str, Any]]) -> None:
    """Add a package's periodic tasks to beat (called from each package's ``init_app``, never on import). An
    entry named in ``CELERY_BEAT_INTERVALS`` runs at that interval instead of its own."""
    intervals: dict[str, float] = celery.conf.get("emsp_beat_intervals") or {}
    adjusted = {
        name: {**entry, "schedule": intervals[name]} if name in intervals else entry for name, entry in schedule.items()
    }
    celery.conf.beat_schedule = {**(celery.conf.beat_schedule or {}), **adjusted}


def check_beat_intervals() -> None:
    """Refuse a ``CELERY_BEAT_INTERVALS`` entry that names no periodic task (a typo would silently keep the
    default interval). Called by the worker and beat entry point, once every package added its schedule."""
    intervals: dict[str, float] = celery.conf.get("emsp_beat_intervals") or {}
    unknown = sorted(set(intervals) - set(celery.conf.beat_schedule or {}))
    if unknown:
        known = ", ".join(sorted(celery.conf.beat_schedule or {}))
        raise ConfigError(f"CELERY_BEAT_INTERVALS names no periodic task: {', '.join(unknown)} (known: {known})")


@task(name="jobs.purge_delivered_messages")
def purge_delivered_messages() -> int:
    """Delete the embedded broker's rows of messages delivered more than an hour ago; returns how many. A message
    a worker holds unacknowledged is in the worker's memory (and put back when it stops), not in its row."""
    broker = str(celery.conf.broker_write_url or "")  # the app's broker, whatever the environment says
    if not is_embedded_broker(broker):
        return 0
    # kombu stamps the row when it delivers the message, with the local naive time (its column's onupdate).
    cutoff = dt.datetime.now() - PURGE_DELIVERED_AFTER
    engine = sa.create_engine(
        broker.removeprefix("sqla+"), connect_args={"timeout": EMBEDDED_BROKER_BUSY_TIMEOUT_SECONDS}
    )
    try:
        with engine.begin() as connection:
            deleted = connection.execute(
                sa.text("DELETE FROM kombu_message WHERE visible = 0 AND timestamp < :cutoff"), {"cutoff": cutoff}
            ).rowcount
    finally:
        engine.dispose()
    log.info("embedded broker: %d delivered messages purged", deleted)
    return int(deleted)
