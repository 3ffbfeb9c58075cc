"""Roaming: the OCPI adapter. ``partners`` (who and the handshake), ``receive`` (what CPOs send us), ``send`` (what
we send them), ``ocpi`` (the protocol only), ``door`` (the routes partners call: ``versions``, ``v221``, and who
is calling), ``cdr_listeners`` (who is told of a new CDR), ``places`` (a location's published name, for what
drivers see), ``cli``, ``tasks``."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Wire roaming into the app: OCPI error answers under /ocpi and the periodic jobs."""
    from app.jobs import add_beat_schedule
    from app.roaming import tasks
    from app.roaming.ocpi import handlers
    from app.roaming.ocpi.safe_urls import UrlPolicy

    UrlPolicy.from_config(app.config)  # a misspelt OCPI_ALLOWED_PRIVATE_HOSTS stops the start, not a handshake
    handlers.init_app(app)
    add_beat_schedule(tasks.beat_schedule(app.config))
