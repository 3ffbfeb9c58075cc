"""Cursor pagination of every list: ``?cursor=&limit=`` in, ``{"items": [...], "next": cursor | null}`` out.

A cursor is the sort key of the last item handed out, signed (itsdangerous, the app's secret) and bound to its
list: the app passes it back unchanged, and a cursor that was altered, or taken from another list, is a 400
``invalid_cursor``. Keys rather than page numbers: a session arriving while the app pages through its history does
not shift the next page (no item twice, none skipped).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from marshmallow import Schema, fields, validate

from app.api.problems import ApiProblem

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_SALT = "api.cursor"

T = TypeVar("T")
Key = tuple[str | int, ...]


class PageArgs(Schema):
    cursor = fields.String(
        validate=validate.Length(min=1, max=500), metadata={"description": "`next` of the previous page, unchanged."}
    )
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))


def page_schema(item_schema: type[Schema], name: str) -> type[Schema]:
    """``{"items": [item], "next": cursor | null}`` of ``item_schema``."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next": fields.String(required=True, allow_none=True, metadata={"description": "null on the last page"}),
        },
        name=name,
    )


def time_key(moment: dt.datetime) -> str:
    """An instant as a sort key: UTC, always with microseconds, so text order is time order."""
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def encode_cursor(kind: str, key: Key) -> str:
    return str(_serializer().dumps([kind, list(key)]))


def decode_cursor(kind: str, cursor: str) -> Key:
    """The key a cursor of list ``kind`` carries; a 400 problem for anything we did not issue for that list."""
    try:
        payload = _serializer().loads(cursor)
    except BadSignature:
        payload = None
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or payload[0] != kind
        or not isinstance(payload[1], list)
        or not all(isinstance(part, str | int) for part in payload[1])
    ):
        raise ApiProblem(
            400,
            "invalid_cursor",
            _l("This list position is not valid. Start again from the first page."),
            detail="cursor: not a cursor of this list",
            errors={"cursor": [_l("This list position is not valid. Start again from the first page.")]},
        )
    return tuple(payload[1])


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_key: Key | None

    def answer(self, kind: str, present: Callable[[T], Any]) -> dict[str, Any]:
        return {
            "items": [present(item) for item in self.items],
            "next": encode_cursor(kind, self.next_key) if self.next_key is not None else None,
        }


def page_of(items: Sequence[T], key: Callable[[T], Key], kind: str, args: dict[str, Any]) -> Page[T]:
    """One page of ``items``, which the service returns sorted by ``key`` descending (newest first)."""
    limit: int = args["limit"]
    after = decode_cursor(kind, args["cursor"]) if args.get("cursor") else None
    remaining = [item for item in items if after is None or key(item) < after]
    chosen = remaining[:limit]
    return Page(chosen, key(chosen[-1]) if len(remaining) > limit else None)
