"""CDRs that have no charge yet, rated again in committed batches (``flask rating rate-pending``, the periodic
``rating.rate_pending`` job, the invoice run's preview), and the record of why one could not be rated.

A CDR is normally rated right after it is stored (``app.rating.tasks``); these are the ones that were not: a task
lost with a broker outage, a CDR pulled from a CPO, a tariff that arrived after its CDR, or the millions of CDRs
``flask demo generate`` leaves unrated. So the pass must hold at national scale: it reads the pending CDRs a batch at
a time, in the order they must be rated (originals before credits, oldest first: a session's fees depend on the
account's earlier sessions of the month), and the caller commits each batch, so memory stays flat and one pass
never holds one transaction over a million rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, delete, exists, select, tuple_
from sqlalchemy.exc import IntegrityError

from app.charging.models import Cdr
from app.db import utcnow
from app.extensions import db
from app.failures import failure_reason
from app.rating.models import RatingProblem, SessionCharge
from app.rating.problems import NotRated, PendingOutcome, problem_kind
from app.rating.services import rate_cdr

log = logging.getLogger(__name__)

# CDRs read and rated per batch: big enough that the read is cheap per CDR, small enough that a batch's
# transaction and the objects it holds stay small.
BATCH_SIZE = 1000


@dataclass(frozen=True)
class _Position:
    """Where a pass stands in the rating order: the last CDR it tried (rated or not)."""

    credit: bool
    start: dt.datetime
    cdr_id: int


def rate_pending(limit: int | None = None) -> tuple[int, list[str]]:
    """Rate every CDR with an account that has no charge yet, in one transaction (the caller commits; for the
    invoice run's preview and the tests). Returns the number rated and the problems (left for finance), one line
    each: ``"<CDR id>: <why>"``. A pass over many CDRs commits batch by batch instead: :func:`rate_pending_batches`."""
    outcome = rate_pending_outcome(limit)
    return outcome.rated, outcome.lines()


def rate_pending_outcome(limit: int | None = None) -> PendingOutcome:
    """All batches of :func:`rate_pending_batches` summed up, flushed, not committed."""
    total = PendingOutcome()
    for batch in rate_pending_batches(limit):
        total.rated += batch.rated
        total.not_rated.extend(batch.not_rated)
    return total


def rate_pending_batches(limit: int | None = None, batch_size: int = BATCH_SIZE) -> Iterator[PendingOutcome]:
    """Rate the CDRs of known accounts that have no charge yet (original CDRs before credits, oldest first),
    ``batch_size`` at a time, at most ``limit`` in all. Yields what each batch did, flushed: the caller may commit
    there (the next batch reads on from where this one stopped, so a commit between batches loses nothing).

    Each CDR is rated in its own savepoint: whatever goes wrong with one (not only a :class:`RatingError`: a
    number too large for the decimal context or for a column, data the database refuses) is rolled back for
    that CDR alone, recorded as its :class:`RatingProblem`, logged, and the others are rated."""
    left = limit
    # The first batch straight from the anti-join: when it is not full it is everything pending (the usual case of
    # the periodic pass: one query). A full one means many are pending (after an outage, a generated data set):
    # then the pass walks on in rating order along ix_roaming_cdrs_rating_order (migration 17d4c0b3e017), a window
    # of CDRs at a time, and rates the ones without a charge, so each query costs its window, not the whole
    # table's anti-join again.
    first = db.session.execute(_pending_after(None).limit(batch_size if left is None else min(batch_size, left))).all()
    if not first:
        return
    yield _rate_rows([(row.id, row.ocpi_id) for row in first])
    if left is not None:
        left -= len(first)
    if len(first) < batch_size:
        return
    after = _Position(credit=first[-1].credit, start=first[-1].start_date_time, cdr_id=first[-1].id)
    while left is None or left > 0:
        window = db.session.execute(_window_after(after, batch_size)).all()
        if not window:
            return
        pending = [(row.id, row.ocpi_id) for row in window if not row.charged]
        if left is not None:
            pending = pending[:left]
            left -= len(pending)
        last = window[-1]
        after = _Position(credit=last.credit, start=last.start_date_time, cdr_id=last.id)
        if pending:
            yield _rate_rows(pending)
        if len(window) < batch_size:
            return


def _rate_rows(rows: list[tuple[int, str]]) -> PendingOutcome:
    outcome = PendingOutcome()
    for cdr_id, ocpi_id in rows:
        _rate_or_record(cdr_id, ocpi_id, outcome)
    _forget_solved_problems()
    db.session.flush()
    return outcome


def _window_after(after: _Position, size: int) -> Select[int, str, bool, dt.datetime, bool]:
    """The next ``size`` CDRs of known accounts after ``after`` in rating order, each with whether it has a charge."""
    window = (
        select(Cdr.id, Cdr.ocpi_id, Cdr.credit, Cdr.start_date_time)
        .where(Cdr.account_id.is_not(None), _past(after))
        .order_by(Cdr.credit, Cdr.start_date_time, Cdr.id)
        .limit(size)
        .subquery()
    )
    charged = exists().where(SessionCharge.cdr_id == window.c.id)
    return select(
        window.c.id, window.c.ocpi_id, window.c.credit, window.c.start_date_time, charged.label("charged")
    ).order_by(window.c.credit, window.c.start_date_time, window.c.id)


def _past(after: _Position) -> ColumnElement[bool]:
    # Past the last CDR tried: the ones rated have left the pending set anyway, the ones that failed must not be
    # tried again in the same pass.
    return tuple_(Cdr.credit, Cdr.start_date_time, Cdr.id) > tuple_(after.credit, after.start, after.cdr_id)


def _pending_after(after: _Position | None) -> Select[int, str, bool, dt.datetime]:
    query = (
        select(Cdr.id, Cdr.ocpi_id, Cdr.credit, Cdr.start_date_time)
        .outerjoin(SessionCharge, SessionCharge.cdr_id == Cdr.id)
        .where(SessionCharge.id.is_(None), Cdr.account_id.is_not(None))
        .order_by(Cdr.credit, Cdr.start_date_time, Cdr.id)
    )
    if after is not None:
        query = query.where(_past(after))
    return query


def _rate_or_record(cdr_id: int, ocpi_id: str, outcome: PendingOutcome) -> None:
    try:
        with db.session.begin_nested():
            rate_cdr(db.session.get_one(Cdr, cdr_id))
        outcome.rated += 1
    except IntegrityError as error:
        if not rated_meanwhile(cdr_id):
            _record_failure(cdr_id, ocpi_id, error, outcome)
        # else: the worker rating new CDRs charged it between our read and our write; that charge stands.
    except Exception as error:  # one CDR fails alone, whatever the cause (DESIGN.md §5)
        _record_failure(cdr_id, ocpi_id, error, outcome)


def rated_meanwhile(cdr_id: int) -> bool:
    """Whether another transaction has charged this CDR by now: a unique-key refusal of our charge then means
    "already rated", not a problem (the periodic pass or a run's preview and the per-CDR task can meet)."""
    return db.session.scalar(select(exists().where(SessionCharge.cdr_id == cdr_id))) is True


def _record_failure(cdr_id: int, ocpi_id: str, error: Exception, outcome: PendingOutcome) -> None:
    reason = failure_reason(error)
    record_problem(cdr_id, reason)
    log.warning("CDR %s (id %s) not rated: %s", ocpi_id, cdr_id, reason)
    outcome.not_rated.append(NotRated(cdr_id, ocpi_id, problem_kind(error), reason))


def record_problem(cdr_id: int, reason: str) -> None:
    """Record (or update) why a CDR could not be rated, in its own savepoint (flushes)."""
    with db.session.begin_nested():
        problem = db.session.scalar(select(RatingProblem).where(RatingProblem.cdr_id == cdr_id))
        if problem is None:
            db.session.add(RatingProblem(cdr_id=cdr_id, reason=reason))
        else:
            problem.reason = reason
            problem.attempts += 1
            problem.last_failed_at = utcnow()


def _forget_solved_problems() -> None:
    """Problems whose CDR has a charge by now (rated later, once its data or our tariffs were fixed)."""
    db.session.execute(
        delete(RatingProblem)
        .where(exists().where(SessionCharge.cdr_id == RatingProblem.cdr_id))
        .execution_options(synchronize_session=False)
    )


def open_problems(cdr_ids: list[int] | None = None, limit: int = 1000) -> dict[int, tuple[str, str]]:
    """Why CDRs could not be rated: CDR id → (its OCPI id, the latest reason), for CDRs still without a charge
    (all of them, or those among ``cdr_ids``), oldest problem first."""
    query = (
        select(RatingProblem.cdr_id, Cdr.ocpi_id, RatingProblem.reason)
        .join(Cdr, Cdr.id == RatingProblem.cdr_id)
        .outerjoin(SessionCharge, SessionCharge.cdr_id == RatingProblem.cdr_id)
        .where(SessionCharge.id.is_(None))
        .order_by(RatingProblem.id)
        .limit(limit)
    )
    if cdr_ids is not None:
        query = query.where(RatingProblem.cdr_id.in_(cdr_ids))
    return {cdr_id: (ocpi_id, reason) for cdr_id, ocpi_id, reason in db.session.execute(query)}
