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

A next-page ``Link`` must stay at the origin (scheme, host, port) of the module's endpoint: the partner's token
goes with every page, and a Link elsewhere would hand it to another host (or point us at an internal one; the
client's SSRF guard checks every URL as well).

This is a batch job: it commits per page (services underneath only flush).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from sqlalchemy import select

from app.db import utcnow
from app.extensions import db
from app.roaming.models import Partner, PullCursor
from app.roaming.ocpi.client import OcpiClient, OcpiClientError
from app.roaming.ocpi.safe_urls import same_origin
from app.roaming.partners.callers import parties_of
from app.roaming.receive.locations import BatchResult, upsert_locations
from app.roaming.receive.tariffs import store_tariffs
from app.timestamps import ocpi_timestamp

log = logging.getLogger(__name__)

MODULES = ("locations", "tariffs", "sessions", "cdrs")
DEFAULT_LIMIT = 100
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 1.0  # seconds; doubled per retry


class PullError(RuntimeError):
    """A page kept failing after the retries; the cursor remembers where to resume."""


@dataclass
class PullResult:
    module: str
    pages: int = 0
    received: int = 0
    stored: int = 0
    stale: int = 0
    errors: list[tuple[str | None, str]] = field(default_factory=list)  # (object id, message)
    resumed: bool = False


def _store_one_by_one(
    store: Callable[[Partner, dict[str, Any]], Any], partner: Partner, objects: list[Any]
) -> BatchResult:
    """Sessions and CDRs are stored by their own services, one by one, each in a savepoint."""
    result = BatchResult()
    for index, obj in enumerate(objects):
        try:
            with db.session.begin_nested():
                store(partner, obj)
            result.stored += 1
        except (ValueError, LookupError) as exc:  # InvalidObjectError is a ValueError
            result.errors.append(
                (index, obj.get("id") if isinstance(obj, dict) else None, getattr(exc, "message", None) or str(exc))
            )
    return result


def _storer(module: str, partner: Partner) -> Callable[[list[Any]], BatchResult]:
    # Objects must belong to the partner's parties; a hub carries many parties, we accept what it relays.
    allowed = None if partner.is_hub else parties_of(partner)
    if module == "locations":
        return lambda objects: upsert_locations(objects, partner=partner, allowed_parties=allowed)
    if module == "tariffs":
        return lambda objects: store_tariffs(objects, partner=partner, allowed_parties=allowed)
    if module == "sessions":
        from app.roaming.receive.sessions import store_session  # written in parallel (sessions engineer); lazy

        return lambda objects: _store_one_by_one(store_session, partner, objects)
    if module == "cdrs":
        from app.roaming.receive.cdrs import store_cdr

        return lambda objects: _store_one_by_one(store_cdr, partner, objects)
    raise ValueError(f"unknown module {module!r}; expected one of {', '.join(MODULES)}")


def _cursor(partner: Partner, module: str) -> PullCursor:
    cursor = db.session.scalar(
        select(PullCursor).where(PullCursor.partner_id == partner.id, PullCursor.module == module)
    )
    if cursor is None:
        cursor = PullCursor(partner_id=partner.id, module=module, objects_received=0)
        db.session.add(cursor)
        db.session.flush()
    return cursor


def _with_query(url: str, **params: Any) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update({k: str(v) for k, v in params.items() if v is not None})
    return urlunsplit(parts._replace(query=urlencode(query)))


def _query_int(url: str, name: str) -> int | None:
    value = dict(parse_qsl(urlsplit(url).query)).get(name)
    return int(value) if value and value.isdigit() else None


def _header_int(headers: Any, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def next_page_url(current_url: str, headers: Any, received: int) -> str | None:
    """Where to go next: Link rel="next" if given; else offset arithmetic when X-Total-Count says more remain."""
    links = requests.utils.parse_header_links(headers.get("Link", "")) if headers.get("Link") else []
    for link in links:
        if link.get("rel") == "next" and link.get("url"):
            return link["url"]
    total = _header_int(headers, "X-Total-Count")
    offset = _query_int(current_url, "offset") or 0
    if received and total is not None and offset + received < total:
        limit = _query_int(current_url, "limit") or _header_int(headers, "X-Limit")
        return _with_query(current_url, offset=offset + received, limit=limit)
    return None


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


def _refuse_foreign_page(partner: Partner, module: str, cursor: PullCursor, base_url: str, url: str) -> None:
    if same_origin(base_url, url):
        return
    cursor.last_error = f"{url}: next page is not at the host of {base_url}"
    db.session.commit()
    raise PullError(
        f"pull {module} from {partner.name} stopped: the next page link {url} leaves the host of {base_url}"
    )


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
) -> PullResult:
    """Sync one module of a partner's Sender interface (incremental, paged, resumable). Commits per page."""
    store = _storer(module, partner)
    base_url = partner.endpoint_url(module, "SENDER")
    if not base_url:
        raise PullError(f"partner {partner.name} has no {module} SENDER endpoint")
    client = client or OcpiClient(partner)
    cursor = _cursor(partner, module)
    result = PullResult(module)
    if cursor.run_started_at is not None and cursor.next_url:
        url, result.resumed = cursor.next_url, True
    else:
        run_start = clock()
        cursor.run_started_at = run_start
        date_from = ocpi_timestamp(cursor.synced_until) if cursor.synced_until else None
        url = _with_query(base_url, date_from=date_from, date_to=ocpi_timestamp(run_start), offset=0, limit=limit)
        cursor.next_url = url
    db.session.commit()

    next_url: str | None = url
    while next_url:
        _refuse_foreign_page(partner, module, cursor, base_url, next_url)  # e.g. resumed from an old cursor
        try:
            reply = _fetch(client, next_url, retries, backoff, sleep)
        except OcpiClientError as exc:
            cursor.last_error = f"{next_url}: {exc}"
            db.session.commit()
            raise PullError(f"pull {module} from {partner.name} stopped at {next_url}: {exc}") from exc
        objects = _unwrap(reply.data)
        batch = store(objects)
        result.pages += 1
        result.received += len(objects)
        result.stored += batch.stored
        result.stale += batch.stale
        result.errors.extend((oid, message) for _, oid, message in batch.errors)
        # An empty page ends the run even if a Link is sent: following it could loop forever.
        next_url = next_page_url(next_url, reply.headers, len(objects)) if objects else None
        if next_url:
            # Before the cursor moves: a rerun fetches this page again rather than the foreign link.
            _refuse_foreign_page(partner, module, cursor, base_url, next_url)
        cursor.next_url = next_url
        cursor.objects_received = (cursor.objects_received or 0) + len(objects)
        db.session.commit()  # the page and the cursor together: a rerun resumes after this page
        if progress is not None:
            progress(result)

    cursor.synced_until = cursor.run_started_at
    cursor.run_started_at = None
    cursor.next_url = None
    cursor.last_error = None
    db.session.commit()
    return result
