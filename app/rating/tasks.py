"""Celery wrappers of rating: a CDR is rated right after it was stored (its own unit of work).

Schedule (``BEAT_SCHEDULE``, added to the beat schedule by the package's ``init_app``):

- ``rating.rate_pending`` every 5 minutes: rates what the per-CDR task did not (a task lost with a broker
  outage, a CDR that arrived through the pull client, a tariff that arrived after its CDR), so a driver's
  session price never waits for the month's invoice run.
"""

from __future__ import annotations

import logging

from app.charging.models import Cdr
from app.extensions import db
from app.jobs import task
from app.rating.services import RatingError, rate_cdr, rate_pending

log = logging.getLogger(__name__)


@task(name="rating.rate_cdr", acks_late=True)
def rate_cdr_task(cdr_id: int) -> str:
    """Rate one stored CDR. A CDR that cannot be rated stays unrated: ``flask rating rate-pending`` and the
    invoice run's preview list it for finance."""
    return _rate_one(cdr_id)


@task(name="rating.rate_cdrs", acks_late=True)
def rate_cdrs_task(cdr_ids: list[int]) -> dict[str, int]:
    """Rate a batch of new CDRs (:mod:`app.rating.queueing`), each in its own unit of work, so one CDR that
    cannot be rated does not hold back the others."""
    outcomes: dict[str, int] = {}
    for cdr_id in cdr_ids:
        outcome = _rate_one(cdr_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _rate_one(cdr_id: int) -> str:
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


@task(name="rating.rate_pending")
def rate_pending_task() -> dict[str, int]:
    rated, problems = rate_pending()
    db.session.commit()
    for problem in problems[:20]:
        log.warning("CDR not rated: %s", problem)
    return {"rated": rated, "not_rated": len(problems)}


BEAT_SCHEDULE = {
    "rating.rate_pending": {"task": "rating.rate_pending", "schedule": 300.0},
}
