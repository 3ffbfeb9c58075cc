"""Celery wrappers of rating: a CDR is rated right after it was stored (its own unit of work).

Schedule (``BEAT_SCHEDULE``, added to the beat schedule by the package's ``init_app``):

- ``rating.rate_pending`` every 5 minutes: rates what the per-CDR task did not (a task lost with a broker
  outage, a CDR that arrived through the pull client, a tariff that arrived after its CDR), so a driver's
  session price never waits for the month's invoice run.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from app.charging.models import Cdr
from app.extensions import db
from app.failures import failure_reason
from app.jobs import task
from app.rating.pending import rate_pending_batches, rated_meanwhile, record_problem
from app.rating.services import rate_cdr

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
    """Rate one CDR in its own transaction. Whatever goes wrong (not only a ``RatingError``: a number out of
    range, data the database refuses) rolls back this CDR alone; why is recorded (``RatingProblem``) and logged."""
    cdr = db.session.get(Cdr, cdr_id)
    if cdr is None or cdr.account_id is None:
        return "skipped"
    ocpi_id = cdr.ocpi_id
    try:
        rate_cdr(cdr)
        db.session.commit()
    except Exception as error:  # one CDR fails alone, whatever the cause (DESIGN.md §5)
        db.session.rollback()
        if isinstance(error, IntegrityError) and rated_meanwhile(cdr_id):
            return "rated"  # by a rate-pending pass or a run's preview between our read and our write
        reason = failure_reason(error)
        log.warning("CDR %s (id %s) not rated: %s", ocpi_id, cdr_id, reason)
        try:
            record_problem(cdr_id, reason)
            db.session.commit()
        except Exception:  # the log line above is all we can keep
            db.session.rollback()
            log.exception("could not record why CDR %s was not rated", cdr_id)
        return "not rated"
    return "rated"


@task(name="rating.rate_pending")
def rate_pending_task() -> dict[str, int]:
    rated = not_rated = 0
    for batch in rate_pending_batches():  # each problem is logged and recorded there
        db.session.commit()  # batch by batch: a pass after a long outage stays small in memory and in the database
        rated += batch.rated
        not_rated += len(batch.not_rated)
    return {"rated": rated, "not_rated": not_rated}


BEAT_SCHEDULE = {
    "rating.rate_pending": {"task": "rating.rate_pending", "schedule": 300.0},
}
