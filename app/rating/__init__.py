"""Rating: turning a CDR into money with the pure pricing engine (CPO cost, our fees, VAT, margin), and
reconciling our calculation with the CPO's."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Wire rating into the app: a new CDR stored over OCPI is queued for rating at once, and the periodic job
    rates what a killed process left unrated."""
    from app.jobs import add_beat_schedule
    from app.rating import queueing, tasks

    queueing.listen_for_new_cdrs()
    add_beat_schedule(tasks.BEAT_SCHEDULE)
