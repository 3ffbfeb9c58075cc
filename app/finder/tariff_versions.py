"""The CPO tariff versions a page's prices need: read light per search, their content kept per process.

Per search, one statement reads every version of every tariff the page's connectors name, without the content:
ids, dates and a fingerprint of the stored JSON (md5 of its text on PostgreSQL, 32 characters over the network
instead of the document; the text itself on SQLite, which runs in-process). The same statement brings the driver's
plan as one more row when the caller asks (:func:`app.finder.driver_plan.plan_select`): one round trip for
everything a price depends on. The content, its parsed and compiled tariff are kept per process by (version id,
fingerprint), so a version whose content changes in place (a CPO re-sending it under the same ``last_updated``,
see :mod:`app.roaming.receive.tariffs`) is read again; only versions not kept yet are read whole, in a second
statement.

Which version of a tariff is in force is roaming's rule (:func:`version_in_force`, as
:func:`app.roaming.receive.tariffs.tariff_in_force`), applied to the versions read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Text,
    bindparam,
    cast,
    func,
    null,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.extensions import db
from app.finder.driver_plan import PLAN_COLUMNS, DriverPlan, plan_from_row, plan_select
from app.finder.sql import ids_condition
from app.ocpi_values import parse_ocpi_datetime
from app.pricing import CompiledTariff, PricingError, Tariff, compile_tariff, parse_tariff
from app.roaming.models import TariffVersion

TariffKey = tuple[str, str, str]  # (country_code, party_id, ci_key(tariff id)) of a tariff


class VersionLike(Protocol):
    """A tariff version as :func:`version_in_force` reads it: the ORM row or a plain :class:`Version`."""

    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def last_updated(self) -> dt.datetime: ...
    @property
    def received_at(self) -> dt.datetime: ...
    @property
    def deleted_at(self) -> dt.datetime | None: ...


@dataclass(frozen=True, slots=True)
class Version:
    """A tariff version read as a plain row (a page reads a few dozen; ORM objects cost more than the prices)."""

    id: int
    country_code: str
    party_id: str
    ocpi_id_key: str
    last_updated: dt.datetime
    received_at: dt.datetime
    deleted_at: dt.datetime | None
    data: dict[str, Any]
    fingerprint: str = ""  # of ``data`` as stored (see the module): the process cache's key with ``id``


V = TypeVar("V", bound=VersionLike)


def _valid_at(version: VersionLike, at: dt.datetime) -> bool:
    start, end = version.data.get("start_date_time"), version.data.get("end_date_time")
    if start and at < parse_ocpi_datetime(start):
        return False
    return not (end and at >= parse_ocpi_datetime(end))


def version_in_force(versions: list[V], at: dt.datetime) -> V | None:
    """The version of one tariff in force at ``at``, among all its versions (oldest first by last_updated): the
    rule of :func:`app.roaming.receive.tariffs.tariff_in_force`, on versions already loaded."""
    known = [v for v in versions if v.received_at <= at and (v.deleted_at is None or v.deleted_at > at)]
    for version in sorted(known, key=lambda v: v.last_updated, reverse=True):
        if _valid_at(version, at):
            return version
    if known:
        return None
    for version in versions:
        if (version.deleted_at is None or version.deleted_at > at) and _valid_at(version, at):
            return version
    return None


_TIMED_RESTRICTIONS = ("start_time", "end_time", "start_date", "end_date", "day_of_week")


def _depends_on_time(tariff: Tariff) -> bool:
    """Whether the price of a session may depend on when it starts (beyond which version is in force)."""
    if tariff.start_date_time is not None or tariff.end_date_time is not None:
        return True
    return any(
        getattr(element.restrictions, name) is not None for element in tariff.elements for name in _TIMED_RESTRICTIONS
    )


@dataclass(frozen=True, slots=True)
class TariffContent:
    """One version's content as the process keeps it: the JSON, the parsed tariff (or why it cannot be), the
    compiled one, and whether its prices depend on the moment."""

    data: dict[str, Any]
    parsed: Tariff | PricingError
    compiled: CompiledTariff | None
    timed: bool


def content_of(data: dict[str, Any]) -> TariffContent:
    try:
        parsed: Tariff | PricingError = parse_tariff(data)
    except PricingError as exc:
        parsed = exc
    if isinstance(parsed, PricingError):
        return TariffContent(data, parsed, None, True)
    return TariffContent(data, parsed, compile_tariff(parsed), _depends_on_time(parsed))


# Process-wide, bounded by emptying: a full cache is cleared rather than kept ordered (a dict's get and set are
# atomic under the GIL; worker threads may race to fill the same entry, harmlessly).
CACHE_LIMIT = 50_000
_contents: dict[tuple[int, str], TariffContent] = {}


def remember(cache: dict[Any, Any], key: object, value: object) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def forget_contents() -> None:
    _contents.clear()


def _content_fingerprint(dialect: str) -> ColumnElement[str]:
    """A fingerprint of a version's stored JSON text: md5 on PostgreSQL; SQLite has no md5 and runs in-process,
    so the text itself."""
    text = cast(TariffVersion.data, Text)
    return (func.md5(text, type_=Text) if dialect == "postgresql" else text).label("fingerprint")


def _version_columns(dialect: str) -> tuple[Any, ...]:
    return (
        TariffVersion.id,
        TariffVersion.country_code,
        TariffVersion.party_id,
        TariffVersion.ocpi_id_key,
        TariffVersion.last_updated,
        TariffVersion.received_at,
        TariffVersion.deleted_at,
        _content_fingerprint(dialect),
    )


def _nulls(columns: tuple[Any, ...]) -> list[ColumnElement[Any]]:
    """Typed NULLs standing for ``columns`` in the other branch of a UNION (the first branch types the result)."""
    return [cast(null(), column.type).label(column.key) for column in columns]


def _keys_condition(dialect: str) -> ColumnElement[bool]:
    """The versions of the tariffs named. On PostgreSQL the keys come as three arrays, so that the statement's
    text is the same whatever their number (see :mod:`app.finder.sql`)."""
    columns = tuple_(TariffVersion.country_code, TariffVersion.party_id, TariffVersion.ocpi_id_key)
    if dialect != "postgresql":
        return columns.in_(bindparam("keys", expanding=True))
    named = (
        func.unnest(
            bindparam("key_country_codes", type_=ARRAY(String)),
            bindparam("key_party_ids", type_=ARRAY(String)),
            bindparam("key_ids", type_=ARRAY(String)),
        )
        .table_valued("country_code", "party_id", "ocpi_id_key")
        .render_derived(name="named")
    )
    return columns.in_(select(named.c.country_code, named.c.party_id, named.c.ocpi_id_key))


def _keys_params(dialect: str, keys: Collection[TariffKey]) -> dict[str, object]:
    if dialect != "postgresql":
        return {"keys": list(keys)}
    return {
        "key_country_codes": [key[0] for key in keys],
        "key_party_ids": [key[1] for key in keys],
        "key_ids": [key[2] for key in keys],
    }


@lru_cache(maxsize=8)
def _versions_statement(dialect: str, with_plan: bool) -> Select[Any]:
    """Every version of the tariffs named, without their content, oldest first; with the driver's plan as one
    more row (its version columns NULL) when ``with_plan``."""
    columns = _version_columns(dialect)
    versions = select(*columns, *(_nulls(PLAN_COLUMNS) if with_plan else ())).where(_keys_condition(dialect))
    if not with_plan:
        return versions.order_by(TariffVersion.last_updated)
    both = union_all(versions, plan_select(*_nulls(columns))).subquery("prices")
    return select(*both.c).order_by(both.c.last_updated)


@lru_cache(maxsize=4)
def _contents_statement(dialect: str) -> Select[Any]:
    return select(TariffVersion.id, TariffVersion.data, _content_fingerprint(dialect)).where(
        ids_condition(TariffVersion.id, dialect)
    )


@dataclass(slots=True)
class Versions:
    """What :func:`read_versions` found: each key's versions (oldest first, every key asked present), the content
    of each version by id, and the plan row when asked (None: no plan)."""

    by_key: dict[TariffKey, list[Version]]
    contents: dict[int, TariffContent]
    plan: DriverPlan | None


def read_versions(keys: Collection[TariffKey], plan_params: Mapping[str, object] | None) -> Versions:
    """Every version of the tariffs ``keys`` (one statement, with the driver's plan when ``plan_params`` are
    given), and the content of those the process does not hold yet (a second statement)."""
    connection = db.session.connection()
    dialect = connection.dialect.name
    found = Versions({key: [] for key in keys}, {}, None)
    params = _keys_params(dialect, keys)
    if plan_params is None:
        rows = connection.execute(_versions_statement(dialect, False), params).all()
    else:
        # No keys at all is valid (they match nothing): the plan row still comes back.
        rows = connection.execute(_versions_statement(dialect, True), {**params, **plan_params}).all()
    versions = []
    for row in rows:
        if row[0] is None:
            found.plan = plan_from_row(row[8:])
        else:
            versions.append(row)
    missing = [row[0] for row in versions if (row[0], row[7]) not in _contents]
    if missing:
        for version_id, data, fingerprint in connection.execute(_contents_statement(dialect), {"ids": missing}):
            remember(_contents, (version_id, fingerprint), content_of(data))
    for version_id, country_code, party_id, key, last_updated, received_at, deleted_at, fingerprint, *_ in versions:
        content = _contents.get((version_id, fingerprint))
        if content is None:  # changed again between the two reads: read it on its own
            data = db.session.scalar(select(TariffVersion.data).where(TariffVersion.id == version_id))
            if data is None:
                continue  # deleted meanwhile
            content = content_of(data)
        version = Version(
            *(version_id, country_code, party_id, key, last_updated, received_at, deleted_at),
            content.data,
            fingerprint,
        )
        found.contents[version_id] = content
        found.by_key[(country_code, party_id, key)].append(version)
    return found
