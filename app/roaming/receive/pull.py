"""Pull client: sync a partner's Sender interface (Locations, Tariffs, Sessions, CDRs) into our database.

One run = ``GET {sender url}?date_from={synced_until}&date_to={run start}&offset=0&limit=N`` and then every
next page: the ``Link: <...>; rel="next"`` header when the server sends one; when it does not but
``X-Total-Count`` says more objects remain (a misbehaving server), the next offset is computed from the objects
received. Objects wrapped in a one-item list (another real-world quirk) are unwrapped.

Resumable: each page is committed together with the cursor (``PullCursor.next_url``), so after a failure the
next run continues at the page that failed, with the same ``date_to``; only a completed run moves
``synced_until`` to its start (the next run's ``date_from``: incremental). A failing page is retried with
exponential backoff before the run gives up.

``date_to`` is the run's start (exclusive on the server): objects changed while we page are picked up by the
next run rather than shifting the pages under us.

Pulls that cannot get stuck (issue 13, real peers): a next-page ``Link`` is followed only when it is a page of
the module's endpoint (same origin, same path, only the query differs; never a page already fetched). Otherwise
the run pages by offset on the endpoint (``pull_paging``), notes it on the cursor and goes on; a cursor left on
such a link by an earlier run pages its window again from offset 0. A server that answers the same objects for
every offset stops the run (with the error on the cursor) instead of looping. ``restart`` forgets the cursor
(everything again), ``since`` starts from a date; a completed run clears the cursor's last error and leaves its
notes there (``note: ...``), where the operator sees them. Only a REGISTERED partner is pulled from, and one
run per cursor at a time (``pull_lock``: beat, "pull now" and the CLI may meet).

This is a batch job: it commits per page (services underneath only flush).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from app.charging.models import Cdr
from app.db import utcnow
from app.db_bulk import refresh_grown_statistics
from app.extensions import db
from app.roaming.cdr_listeners import cdr_stored
from app.roaming.models import Partner, PartnerStatus, PullCursor
from app.roaming.ocpi.client import OcpiClient, OcpiClientError
from app.roaming.partners.callers import parties_of
from app.roaming.receive.location_writes import LOCATION_TABLES
from app.roaming.receive.locations import BatchResult, upsert_locations
from app.roaming.receive.pull_lock import exclusive_run
from app.roaming.receive.pull_paging import (
    NextPage,
    Window,
    link_problem,
    next_page,
    page_fingerprint,
    query_int,
    shown,
)
from app.roaming.receive.tariffs import store_tariffs

log = logging.getLogger(__name__)

MODULES = ("locations", "tariffs", "sessions", "cdrs")
DEFAULT_LIMIT = 100
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 1.0  # seconds; doubled per retry
MAX_CURSOR_TEXT = 2000  # the cursor's last error or notes: partners' URLs in it are bounded too


class PullError(RuntimeError):
    """The pull cannot start (partner not registered, no endpoint, a run already under way) or stopped (a page
    kept failing after the retries, a server repeating its page); the cursor remembers where to resume.
    ``no_answer``: the partner gave no HTTP answer at all (timed out, no connection), so its other modules would
    wait out the same deadlines."""

    def __init__(self, message: str, *, no_answer: bool = False) -> None:
        super().__init__(message)
        self.no_answer = no_answer


@dataclass
class PullResult:
    module: str
    pages: int = 0
    received: int = 0
    stored: int = 0
    stale: int = 0
    errors: list[tuple[str | None, str]] = field(default_factory=list)  # (object id, message)
    resumed: bool = False
    notes: list[str] = field(default_factory=list)  # what went otherwise than asked (a Link not followed...)


def _party_refused(obj: Any, allowed: frozenset[tuple[str, str]] | None) -> str | None:
    """Why an object of another party than the partner's may not be stored (the door's rule), or None. A key that
    is not a short printable text is left to the store, which names the field."""
    if allowed is None or not isinstance(obj, dict):
        return None
    country_code, party_id = obj.get("country_code"), obj.get("party_id")
    if not (isinstance(country_code, str) and isinstance(party_id, str)):
        return None
    if not (len(country_code) <= 2 and len(party_id) <= 3 and (country_code + party_id).isprintable()):
        return None
    if (country_code.upper(), party_id.upper()) in allowed:
        return None
    return f"party {country_code.upper()}/{party_id.upper()} not allowed"


def _store_one_by_one(
    store: Callable[[Partner, dict[str, Any]], Any],
    partner: Partner,
    objects: list[Any],
    allowed: frozenset[tuple[str, str]] | None = None,
) -> BatchResult:
    """Sessions and CDRs are stored by their own services, one by one, each in a savepoint: one that fails is
    reported (and quarantined, see :func:`_storer`) and the page goes on."""
    from sqlalchemy.exc import DataError, IntegrityError

    from app.failures import failure_reason

    result = BatchResult()
    for index, obj in enumerate(objects):
        oid = obj.get("id") if isinstance(obj, dict) else None
        refused = _party_refused(obj, allowed)
        if refused is not None:
            result.errors.append((index, oid, refused))
            continue
        try:
            with db.session.begin_nested():
                stored = store(partner, obj)
            result.stored += 1
            if isinstance(stored, tuple) and isinstance(stored[0], Cdr) and stored[1] and stored[0].account_id:
                result.new_cdr_ids.append(stored[0].id)  # store_cdr answers (cdr, created)
        except (ValueError, LookupError) as exc:  # InvalidObjectError is a ValueError
            result.errors.append((index, oid, getattr(exc, "message", None) or str(exc)))
        except (DataError, IntegrityError) as exc:  # the database refused what validation let through
            result.errors.append((index, oid, failure_reason(exc)))
    return result


def _storer(module: str, partner: Partner) -> Callable[[list[Any]], BatchResult]:
    """How a page of ``module`` is stored. What cannot be stored is quarantined with its reason in the page's
    transaction (committed with the cursor), so the cursor never moves past an object that is lost."""
    from app.roaming.receive.quarantine import keep_pulled

    # Objects must belong to the partner's parties; a hub carries many parties, we accept what it relays.
    allowed = None if partner.is_hub else parties_of(partner)
    store: Callable[[list[Any]], BatchResult]
    if module == "locations":

        def store(objects: list[Any]) -> BatchResult:
            return upsert_locations(objects, partner=partner, allowed_parties=allowed)

    elif module == "tariffs":

        def store(objects: list[Any]) -> BatchResult:
            return store_tariffs(objects, partner=partner, allowed_parties=allowed)

    elif module == "sessions":
        from app.roaming.receive.sessions import store_session

        def store(objects: list[Any]) -> BatchResult:
            return _store_one_by_one(store_session, partner, objects, allowed)

    elif module == "cdrs":
        from app.roaming.receive.cdrs import store_cdr

        def store(objects: list[Any]) -> BatchResult:
            return _store_one_by_one(store_cdr, partner, objects, allowed)

    else:
        raise ValueError(f"unknown module {module!r}; expected one of {', '.join(MODULES)}")
    partner_id = partner.id

    def store_or_keep(objects: list[Any]) -> BatchResult:
        return keep_pulled(partner_id, module, objects, store(objects))

    return store_or_keep


def _cursor(partner: Partner, module: str) -> PullCursor:
    cursor = db.session.scalar(
        select(PullCursor).where(PullCursor.partner_id == partner.id, PullCursor.module == module)
    )
    if cursor is None:
        cursor = PullCursor(partner_id=partner.id, module=module, objects_received=0)
        db.session.add(cursor)
        db.session.flush()
    return cursor


def reset_cursor(partner: Partner, module: str, *, since: dt.datetime | None = None) -> PullCursor:
    """Forget where the pull of ``module`` stands: the next run pulls everything (``since`` None) or what changed
    from ``since`` on, and an interrupted run is not resumed. Flushes; the caller commits."""
    cursor = _cursor(partner, module)
    cursor.synced_until = since
    cursor.run_started_at = None
    cursor.next_url = None
    db.session.flush()
    return cursor


def _unwrap(objects: Any) -> list[Any]:
    if not isinstance(objects, list):
        return [objects] if isinstance(objects, dict) else []
    return [item[0] if isinstance(item, list) and len(item) == 1 else item for item in objects]


def _fetch(client: OcpiClient, url: str, retries: int, backoff: float, sleep: Callable[[float], None]) -> Any:
    attempt = 0
    while True:
        try:
            return client.get(url)
        except OcpiClientError as exc:
            if attempt >= retries or not exc.retryable:  # a refused URL stays refused
                raise
            delay = backoff * (2**attempt)
            log.warning("pull: %s failed (%s), retry %d in %.1fs", url, exc, attempt + 1, delay)
            attempt += 1
            sleep(delay)


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_CURSOR_TEXT else text[: MAX_CURSOR_TEXT - 1] + "…"


def _note(
    partner: Partner, module: str, cursor: PullCursor, result: PullResult, note: str | None, problem: str | None
) -> None:
    """Log and keep on the cursor what went otherwise than asked, once per kind of ``problem`` and run."""
    if note is None or note in result.notes or (problem and any(problem in noted for noted in result.notes)):
        return
    log.warning("pull %s from %s: %s", module, partner.name, note)
    result.notes.append(note)
    cursor.last_error = _bounded("note: " + "; ".join(result.notes))


def _fail(
    partner: Partner, module: str, cursor: PullCursor, url: str, error: str, *, no_answer: bool = False
) -> PullError:
    """Keep why the run stopped on the cursor (committed with the pages before) and say it."""
    cursor.last_error = _bounded(f"{shown(url)}: {error}")
    db.session.commit()
    return PullError(f"pull {module} from {partner.name} stopped at {shown(url)}: {error}", no_answer=no_answer)


def pull(
    partner: Partner,
    module: str,
    *,
    limit: int = DEFAULT_LIMIT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    client: OcpiClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], dt.datetime] = utcnow,
    progress: Callable[[PullResult], None] | None = None,
    restart: bool = False,
    since: dt.datetime | None = None,
) -> PullResult:
    """Sync one module of a partner's Sender interface (incremental, paged, resumable). Commits per page.

    ``restart`` forgets the cursor: everything is pulled again (stored objects are recognised, not doubled);
    ``since`` forgets it too and pulls what changed from then on. Either starts a new run instead of resuming."""
    if partner.status != PartnerStatus.REGISTERED:
        raise PullError(f"partner {partner.name} is {partner.status}: nothing is pulled from it")
    store = _storer(module, partner)
    base_url = partner.endpoint_url(module, "SENDER")
    if not base_url:
        raise PullError(f"partner {partner.name} has no {module} SENDER endpoint")
    client = client or OcpiClient(partner)
    cursor = _cursor(partner, module)
    db.session.commit()  # the cursor exists for every run from here on: its id names the run's lock
    with exclusive_run(cursor.id) as ours:
        if not ours:
            raise PullError(f"a pull of {module} from {partner.name} is already running; this one is not started")
        if restart or since is not None:
            reset_cursor(partner, module, since=since)
        result = PullResult(module)
        run_start = cursor.run_started_at
        resume_at = cursor.next_url if run_start is not None else None
        if run_start is None or not resume_at:
            run_start = cursor.run_started_at = clock()
        window = Window(base_url, cursor.synced_until, run_start, limit)
        url = window.page(0)
        offset: int | None = 0  # of the page at url; unknown for a partner's Link without one
        if resume_at:
            result.resumed = True
            problem = link_problem(base_url, resume_at)
            if problem is None:
                url, offset = resume_at, query_int(resume_at, "offset")
            else:  # left there by an earlier version, or the partner's endpoint moved since
                note = f"the page to resume at {problem} ({shown(resume_at)}): its run is paged again by offset from 0"
                _note(partner, module, cursor, result, note, problem)
        cursor.next_url = url
        db.session.commit()

        fetched: set[str] = set()
        previous_page: tuple[Any, ...] | None = None
        next_url: str | None = url
        while next_url:
            try:
                reply = _fetch(client, next_url, retries, backoff, sleep)
            except OcpiClientError as exc:
                # No HTTP answer (timed out, no connection); a URL our guard refuses is this module's alone.
                no_answer = exc.http_status is None and exc.retryable
                raise _fail(partner, module, cursor, next_url, str(exc), no_answer=no_answer) from exc
            fetched.add(next_url)
            objects = _unwrap(reply.data)
            batch = store(objects)
            result.pages += 1
            result.received += len(objects)
            result.stored += batch.stored
            result.stale += batch.stale
            result.errors.extend((oid, message) for _, oid, message in batch.errors)
            fingerprint = page_fingerprint(objects)
            if objects and fingerprint is not None and fingerprint == previous_page:
                # The objects are kept (stored again: no change); paging on would repeat this page forever.
                raise _fail(partner, module, cursor, next_url, "the same objects as the page before (offset ignored?)")
            previous_page = fingerprint
            # An empty page ends the run even if a Link is sent: following it could loop forever.
            page = next_page(window, offset, reply.headers, len(objects), fetched) if objects else NextPage(None)
            _note(partner, module, cursor, result, page.note, page.problem)
            next_url, offset = page.url, page.offset
            cursor.next_url = next_url
            cursor.objects_received = (cursor.objects_received or 0) + len(objects)
            db.session.commit()  # the page and the cursor together: a rerun resumes after this page
            if module == "locations":  # a first feed grows what the finder reads many times over
                refresh_grown_statistics(LOCATION_TABLES)
                db.session.commit()
            for cdr_id in batch.new_cdr_ids:
                # After the commit, as the OCPI door does: rating queues each new CDR of ours (a pulled CDR was
                # otherwise rated only by the periodic rate-pending run).
                cdr_stored(cdr_id)
            if progress is not None:
                progress(result)

        cursor.synced_until = cursor.run_started_at
        cursor.run_started_at = None
        cursor.next_url = None
        # A completed run clears the last error; what it noted stays visible until a run without notes.
        cursor.last_error = _bounded("note: " + "; ".join(result.notes)) if result.notes else None
        db.session.commit()
        return result
