"""Celery bound to the Flask app: every task runs inside an app context.

Without a broker (the embedded default and the tests) tasks run inline (eager), so the same code path works
on a laptop and on many worker machines.
"""

from __future__ import annotations

from celery import Task
from flask import Flask

from app.extensions import celery


def init_celery(app: Flask) -> None:
    broker = app.config.get("CELERY_BROKER_URL")

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery.conf.update(
        broker_url=broker or "memory://",
        result_backend=app.config.get("CELERY_RESULT_BACKEND") or None,
        task_always_eager=not broker,
        task_eager_propagates=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        timezone="UTC",
    )
    celery.Task = FlaskTask
    app.extensions["celery"] = celery
