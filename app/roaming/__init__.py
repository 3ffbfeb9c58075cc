"""Roaming: the OCPI adapter. ``partners`` (who and the handshake), ``receive`` (what CPOs send us), ``send``
(what we send them), ``ocpi`` (the protocol; ``ocpi.v221`` is the door), ``cli``, ``tasks``."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Wire roaming into the app: OCPI error answers under /ocpi and the periodic jobs."""
    from app.jobs import add_beat_schedule
    from app.roaming import tasks
    from app.roaming.ocpi import handlers

    handlers.init_app(app)
    add_beat_schedule(tasks.BEAT_SCHEDULE)
