"""Where the next page of a pull is: the partner's ``Link`` when it is a page of the endpoint, else by offset.

OCPI pages a Sender's list with ``Link: <...>; rel="next"``. Real peers send Links that cannot be followed: one
put ``/ocpi/cpo/VersionNumber.v_2_2_1/locations`` (an enum's name where the version belongs) in every next link.
Followed blindly, such a link fails, the cursor keeps it, and every later run resumes there and fails again:
the module is stuck for good. So a Link is followed only when it is a page of the module's endpoint:

- same origin (scheme, host, port) as the endpoint: the partner's token goes with every page, and a Link
  elsewhere would hand it to another host (or point us at an internal one; the client's SSRF guard checks every
  URL as well);
- the endpoint's own path: only the query may differ (a trailing slash aside);
- not a page already fetched in this run, nor one at an offset before the end of the current page (a Link
  back to the first page would loop forever).

Otherwise the pull pages by offset on the endpoint, in the run's window: the next offset is the current page's
offset plus the objects it held, ``X-Total-Count`` (when given) says where the list ends and ``X-Limit`` (when
given) caps the page size asked for; an empty page ends the run in any case (the caller's rule). The pull notes
it, visibly but without stopping: the cursor's note and the log.

A page whose offset is unknown (a run resumed at a partner's Link that carries none) cannot be continued by
offset: the window is paged again from offset 0. Storing is idempotent (natural keys, stale versions kept
out), so pages fetched twice change nothing; pages skipped would lose objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from app.roaming.ocpi.safe_urls import same_origin
from app.timestamps import ocpi_timestamp

LOGGED_LINK_CHARS = 200  # a partner's Link in a note or the log: enough to recognise it, bounded


@dataclass(frozen=True)
class Window:
    """The query of one run: ``date_from`` (inclusive, None = from the beginning) to ``date_to`` (exclusive),
    asked ``limit`` objects at a time from the module's ``endpoint``."""

    endpoint: str
    date_from: dt.datetime | None
    date_to: dt.datetime
    limit: int

    def page(self, offset: int, limit: int | None = None) -> str:
        """The URL of the page at ``offset`` (at most ``limit`` objects, the window's limit by default)."""
        return with_query(
            self.endpoint,
            date_from=ocpi_timestamp(self.date_from) if self.date_from else None,
            date_to=ocpi_timestamp(self.date_to),
            offset=offset,
            limit=limit or self.limit,
        )


@dataclass(frozen=True)
class NextPage:
    """The page to fetch next (None: the run is complete), its offset when known, and a note for the operator
    when the partner's Link was not used (``problem``: what was wrong with it, the same for every page of a
    partner that always sends such Links, so a run notes it once)."""

    url: str | None
    offset: int | None = None
    note: str | None = None
    problem: str | None = None


def with_query(url: str, **params: Any) -> str:
    """``url`` with ``params`` set in its query (None values left out, the others' order kept)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update({name: str(value) for name, value in params.items() if value is not None})
    return urlunsplit(parts._replace(query=urlencode(query)))


def query_int(url: str, name: str) -> int | None:
    value = dict(parse_qsl(urlsplit(url).query)).get(name)
    return int(value) if value and value.isdigit() and len(value) <= 12 else None


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = (headers.get(name) or "").strip()
    return int(value) if value.isdigit() and len(value) <= 12 else None


def next_link(headers: Mapping[str, str]) -> str | None:
    """The URL of ``Link: <...>; rel="next"``, if the partner sent one."""
    header = headers.get("Link")
    if not header:
        return None
    for link in requests.utils.parse_header_links(header):
        if link.get("rel") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _path(url: str) -> str:
    return urlsplit(url).path.rstrip("/") or "/"


def link_problem(endpoint: str, url: str, fetched: Collection[str] = ()) -> str | None:
    """Why ``url`` is not a page of ``endpoint`` we may ask for, or None when it is one."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is no number)
    except ValueError:
        return "is not a URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "is not a URL"
    if not same_origin(endpoint, url):
        return "leaves the origin of the endpoint"
    if _path(url) != _path(endpoint):
        return f"is not at the endpoint's path {_path(endpoint)}"
    if url in fetched:
        return "names a page already fetched in this run"
    return None


def shown(url: str) -> str:
    """A partner's URL as we show it: bounded, without control characters."""
    text = "".join(char if char.isprintable() else "?" for char in url[:LOGGED_LINK_CHARS])
    return text + ("…" if len(url) > LOGGED_LINK_CHARS else "")


def next_page(
    window: Window, offset: int | None, headers: Mapping[str, str], received: int, fetched: Collection[str]
) -> NextPage:
    """What follows a page of ``received`` objects (> 0) fetched at ``offset`` (None when unknown)."""
    end = offset + received if offset is not None else None
    total = header_int(headers, "X-Total-Count")
    server_limit = header_int(headers, "X-Limit")
    limit = min(window.limit, server_limit) if server_limit else window.limit
    link = next_link(headers)
    if link is None:
        # No Link: the last page, unless X-Total-Count says more remain (a server that forgets its Links).
        if total is None or (end is not None and end >= total):
            return NextPage(None)
        if end is None:
            missing = "is missing while X-Total-Count says more objects remain, at a page of unknown offset"
            note = f"the next-page Link {missing}: the window is paged again by offset from 0"
            return NextPage(window.page(0, limit), 0, note, missing)
        return NextPage(window.page(end, limit), end)
    problem = link_problem(window.endpoint, link, fetched)
    link_offset = query_int(link, "offset")
    if problem is None and end is not None and link_offset is not None and link_offset < end:
        problem = f"goes back to offset {link_offset}"
    if problem is None:
        return NextPage(link, end if end is not None else link_offset)
    note = f"the next-page Link {problem} (first seen: {shown(link)}): paged by offset instead"
    if end is None:
        return NextPage(window.page(0, limit), 0, f"{note}, from 0 as this page's offset is unknown", problem)
    if total is not None and end >= total:
        return NextPage(None, None, note, problem)
    return NextPage(window.page(end, limit), end, note, problem)


def page_fingerprint(objects: list[Any]) -> tuple[tuple[Any, Any, Any], ...] | None:
    """Who is on a page ((country_code, party_id, id) of each object), to see a server answer the same page
    again; None when an object carries no id (nothing to compare)."""
    keys = []
    for obj in objects:
        if not isinstance(obj, dict) or obj.get("id") is None:
            return None
        keys.append((obj.get("country_code"), obj.get("party_id"), obj.get("id")))
    return tuple(keys)
