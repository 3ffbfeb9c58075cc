"""Celery wrappers of rating: a CDR is rated right after it was stored (its own unit of work)."""

from __future__ import annotations

import logging

from app.extensions import celery, db
from app.rating.services import RatingError, rate_cdr
from app.roaming.models import Cdr

log = logging.getLogger(__name__)


@celery.task(name="rating.rate_cdr", acks_late=True)
def rate_cdr_task(cdr_id: int) -> str:
    """Rate one stored CDR. A CDR that cannot be rated stays unrated: ``flask rating rate-pending`` and the
    invoice run's preview list it for finance."""
    cdr = db.session.get(Cdr, cdr_id)
    if cdr is None or cdr.account_id is None:
        return "skipped"
    try:
        rate_cdr(cdr)
    except RatingError as error:
        db.session.rollback()
        log.warning("CDR %s not rated: %s", cdr_id, error)
        return "not rated"
    db.session.commit()
    return "rated"
