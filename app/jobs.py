"""Celery bound to the Flask app: every task runs inside an app context.

Without a broker (the embedded default and the tests) tasks run inline (eager), so the same code path works
on a laptop and on many worker machines.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from flask import Flask, has_app_context

from app.extensions import celery


class FlaskTask(Task):
    """Runs in the caller's app context when there is one (eager mode, tests), else in the worker's app."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return self.run(*args, **kwargs)
        flask_app: Flask = celery.conf["flask_app"]
        with flask_app.app_context():
            return self.run(*args, **kwargs)


def init_celery(app: Flask) -> None:
    broker = app.config.get("CELERY_BROKER_URL")
    celery.conf.update(
        broker_url=broker or "memory://",
        result_backend=app.config.get("CELERY_RESULT_BACKEND") or None,
        task_always_eager=not broker,
        task_eager_propagates=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_default_queue=app.config.get("CELERY_TASK_DEFAULT_QUEUE", "celery"),
        timezone="UTC",
        flask_app=app,
    )
    app.extensions["celery"] = celery


def add_beat_schedule(schedule: dict[str, dict[str, Any]]) -> None:
    """Add a package's periodic tasks to beat (called from each package's ``init_app``, never on import)."""
    celery.conf.beat_schedule = {**(celery.conf.beat_schedule or {}), **schedule}
