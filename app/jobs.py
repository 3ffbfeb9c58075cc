"""Celery bound to the Flask app: every task runs inside an app context.

Without a broker (the embedded default and the tests) tasks run inline (eager), so the same code path works
on a laptop and on many worker machines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from celery import Task
from flask import Flask, has_app_context

from app.extensions import celery

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


def init_celery(app: Flask) -> None:
    broker = app.config.get("CELERY_BROKER_URL")
    queue = app.config.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
    if (celery.conf.broker_url, celery.conf.task_default_queue) != (broker or "memory://", queue):
        _forget_broker_state()
    celery.conf.update(
        broker_url=broker or "memory://",
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
    )
    app.extensions["celery"] = celery


def add_beat_schedule(schedule: dict[str, dict[str, Any]]) -> None:
    """Add a package's periodic tasks to beat (called from each package's ``init_app``, never on import)."""
    celery.conf.beat_schedule = {**(celery.conf.beat_schedule or {}), **schedule}
