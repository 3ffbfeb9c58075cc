"""Sender interface of the fake CPO: paged GET lists of Locations, Tariffs, Sessions and CDRs.

Serves ``cpo.data[module]`` filtered by ``last_updated`` in [date_from, date_to) (date_to exclusive, as the
spec says), ordered by last_updated, with ``offset``/``limit`` and the pagination headers
(``X-Total-Count``, ``X-Limit``, ``Link: <...>; rel="next"``).

Misbehaviour switches (``cpo.misbehave``):
- ``no_link_header``: never send Link, even when more pages remain;
- ``fail_once_at_offset``: answer HTTP 500 once for the page at that offset;
- ``fail_at_offset``: answer HTTP 500 for that offset for as long as the switch is set;
- ``wrap_single_in_list``: every object wrapped in a one-item list;
- ``page_size``: the server's maximum limit (it answers fewer objects than asked);
- ``broken_link_path``: the next page's ``Link`` has its path mangled the way a real peer does it
  (``/ocpi/cpo/VersionNumber.v_2_2_1/locations?...``: the enum's name where the version belongs); that path
  answers 404, like the peer's;
- ``link_origin``: the next page's ``Link`` names another origin (the value, e.g. ``"http://127.0.0.1:4321"``)
  with the right path: following it would hand our token to another host;
- ``space_timestamps``: every DateTime served (``last_updated``, ``start_date_time``, ...) has a space instead of
  the ``T`` (``2026-11-02 12:00:00Z``); ``"without_z"`` drops the ``Z`` as well (``2026-11-02 12:00:00``, UTC by
  OCPI's rule). Fractions of seconds in the data are served as they are.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from tests.roaming.fake_cpo.server import FakeCpo, envelope

MODULES = ("locations", "tariffs", "sessions", "cdrs")
PREFIX = "/ocpi/cpo/2.2.1"
BROKEN_PREFIX = "/ocpi/cpo/VersionNumber.v_2_2_1"  # what a real peer put in its Link instead of PREFIX
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")  # the start of an OCPI DateTime


def _parse(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _sorted(cpo: FakeCpo, module: str) -> list[tuple[dt.datetime, dict[str, Any]]]:
    """The module's objects with parsed last_updated, sorted; cached until the data list changes."""
    objects = cpo.data.get(module, [])
    cache = cpo.state.setdefault("sender_cache", {})
    key = (id(objects), len(objects))
    if cache.get(module, (None,))[0] != key:
        pairs = sorted(((_parse(o["last_updated"]), o) for o in objects), key=lambda pair: pair[0])
        cache[module] = (key, pairs)
    return cache[module][1]


def _list(module: str):  # type: ignore[no-untyped-def]
    def handler(cpo: FakeCpo, request: Request, values: dict[str, Any]) -> Response:
        args = request.args
        try:
            offset = int(args.get("offset", 0))
            limit = int(args.get("limit", 50))
            date_from = _parse(args["date_from"]) if args.get("date_from") else None
            date_to = _parse(args["date_to"]) if args.get("date_to") else None
        except ValueError:
            return envelope(status_code=2001, status_message="bad parameters", http_status=400)
        if cpo.misbehave.get("fail_at_offset") == offset:
            return envelope(status_code=3000, status_message="persistent failure", http_status=500)
        failed = cpo.state.setdefault("failed_offsets", set())
        if cpo.misbehave.get("fail_once_at_offset") == offset and (module, offset) not in failed:
            failed.add((module, offset))
            return envelope(status_code=3000, status_message="temporary failure", http_status=500)
        limit = min(limit, cpo.misbehave.get("page_size") or 1000)
        matching = [
            obj
            for moment, obj in _sorted(cpo, module)
            if (date_from is None or moment >= date_from) and (date_to is None or moment < date_to)
        ]
        page = matching[offset : offset + limit]
        headers = {"X-Total-Count": str(len(matching)), "X-Limit": str(limit)}
        if offset + len(page) < len(matching) and not cpo.misbehave.get("no_link_header"):
            params = {k: v for k, v in args.items() if k not in ("offset", "limit")}
            params.update(offset=str(offset + len(page)), limit=str(limit))
            next_url = request.base_url
            if cpo.misbehave.get("broken_link_path"):
                next_url = next_url.replace(PREFIX, BROKEN_PREFIX, 1)
            if cpo.misbehave.get("link_origin"):
                next_url = next_url.replace(request.host_url.rstrip("/"), cpo.misbehave["link_origin"], 1)
            headers["Link"] = f'<{next_url}?{urlencode(params)}>; rel="next"'
        style = cpo.misbehave.get("space_timestamps")
        if style:
            page = [_spaced(obj, without_z=style == "without_z") for obj in page]
        data: list[Any] = [[obj] for obj in page] if cpo.misbehave.get("wrap_single_in_list") else page
        return envelope(data, headers=headers)

    return handler


def _spaced(value: Any, *, without_z: bool) -> Any:
    """A copy of ``value`` with every DateTime written ``2026-11-02 12:00:00Z`` (or without the ``Z``)."""
    if isinstance(value, dict):
        return {key: _spaced(item, without_z=without_z) for key, item in value.items()}
    if isinstance(value, list):
        return [_spaced(item, without_z=without_z) for item in value]
    if isinstance(value, str) and DATETIME.match(value):
        spaced = value[:10] + " " + value[11:]
        return spaced.removesuffix("Z") if without_z else spaced
    return value


def _single(module: str, key: str):  # type: ignore[no-untyped-def]
    def handler(cpo: FakeCpo, request: Request, values: dict[str, Any]) -> Response:
        found = next((o for o in cpo.data.get(module, []) if o.get(key) == values["object_id"]), None)
        if found is None:
            return envelope(
                status_code=2003 if module == "locations" else 2000, status_message="unknown", http_status=404
            )
        return envelope(found)

    return handler


def install(cpo: FakeCpo) -> None:
    for module in MODULES:
        cpo.route(f"{PREFIX}/{module}", ["GET"], _list(module))
    cpo.route(f"{PREFIX}/locations/<object_id>", ["GET"], _single("locations", "id"))
    cpo.route(f"{PREFIX}/tariffs/<object_id>", ["GET"], _single("tariffs", "id"))


def sender_endpoints(cpo: FakeCpo) -> list[dict[str, str]]:
    """The endpoints to put on the Partner row so the pull client finds this server's Sender interface."""
    return [{"identifier": module, "role": "SENDER", "url": cpo.url(f"{PREFIX}/{module}")} for module in MODULES]
