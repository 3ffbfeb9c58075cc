"""Billing: monthly invoice runs (``runs``), invoices and numbering (``invoicing``), documents and delivery
(``documents``), collection through Stripe with dunning (``collection``), and finance exports (``reporting``)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Wire billing into the app: the NO_CREDIT rule of real-time authorization (an unpaid, overdue invoice),
    the invoice-run and collection tasks, and the dunning schedule. Every process built by ``create_app`` (web,
    worker, beat, CLI) gets them, whatever it happens to import."""
    from app.billing.collection import dunning
    from app.billing.collection import tasks as collection_tasks

    # A worker must know the run's chunk and delivery tasks: Celery registers a task when its module loads.
    from app.billing.runs import tasks as run_tasks  # noqa: F401
    from app.jobs import add_beat_schedule

    dunning.register_standing_check()
    add_beat_schedule(collection_tasks.BEAT_SCHEDULE)
