"""The driver's all-in price for a typical session at a connector, before charging.

The price is the rating estimate (:func:`app.rating.estimates.estimate_for_connector`): the CPO tariff in force
now for that connector, priced by the same engine that bills, plus our fees under the driver's plan, plus the VAT
of the country. This module computes exactly what that function computes (a test holds them equal, connector by
connector, on the shared data), but for a whole page at once: the tariff versions of all the page's connectors in
one query, each version parsed and compiled once, and each distinct estimate (version, country, zone, power)
computed once. ``estimate_for_connector`` asks the database once per tariff id and parses the tariff on every
call, ~1 ms a connector: a page of 20 results would spend its whole budget there.

Across requests (per process): what a search reads of the tariff versions each time is light (ids, dates and a
fingerprint of the content: md5 of the JSON text on PostgreSQL, the text itself on SQLite); the content, its
parsed and compiled tariff are kept per (version id, fingerprint), so a version whose content changes in place
(a CPO re-sending it under the same ``last_updated``, see :mod:`app.roaming.receive.tariffs`) is read again. An
estimate is kept too, keyed by everything it depends on (version and fingerprint, the plan's terms, country,
zone, EVSE power, the typical session, the country's VAT rate), but only for a tariff whose price cannot depend
on the moment: no time of day, day of week or date restriction and no validity period. Any other tariff is
priced at the request's instant, as before.

A connector without a tariff in force, or whose tariff cannot be priced for this driver (another currency than
the plan's, a country without a VAT rate), has an *unknown* price that says why; the finder never guesses one.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import ColumnElement, Select, Text, and_, bindparam, cast, func, or_, select, tuple_

from app.accounts.models import Account
from app.countries import alpha2
from app.extensions import db
from app.ocpi_ids import ci_key
from app.ocpi_values import parse_ocpi_datetime
from app.plans.models import Plan, Subscription
from app.plans.services import DEFAULT_PLAN_CODE, TERM_FIELDS, current_version, plan_at, terms_of
from app.pricing import (
    CompiledTariff,
    CurrencyMismatchError,
    Estimate,
    PlanTerms,
    PricingError,
    Tariff,
    UnknownCountryError,
    compile_tariff,
    estimate,
    parse_tariff,
)
from app.rating.countries import DEFAULT_ZONES
from app.roaming.models import Connector, Evse, Location, TariffVersion

REMOVED = "REMOVED"
TariffKey = tuple[str, str, str]  # (country_code, party_id, ci_key(tariff id)) of a tariff


class PriceUnknown(enum.StrEnum):
    """Why a connector has no price (the doors word it)."""

    NO_PLAN = "no_plan"  # no plan to price with (the standard plans are not seeded)
    NO_TARIFF = "no_tariff"  # the connector names no tariff we hold in force now
    CURRENCY = "currency"  # the tariff is in another currency than the driver's plan
    COUNTRY = "country"  # no VAT rate for the country of the location
    UNPRICEABLE = "unpriceable"  # the tariff cannot price the typical session (see ``detail``)


@dataclass(frozen=True, slots=True)
class ConnectorRef:
    """What the price of one connector depends on (from the ORM objects or from plain rows)."""

    country_code: str  # the location's party
    party_id: str
    country: str  # the location's country, alpha-3 as OCPI sends it
    time_zone: str | None
    evse_uid: str
    evse_max_power_kw: Decimal | None
    connector_id: str
    tariff_ids: tuple[str, ...]


@dataclass(frozen=True)
class SessionPrice:
    """The typical session at a connector for one plan: known (amounts set) or unknown (``unknown`` says why).
    Connectors priced alike (same tariff version, country, zone and EVSE power) share one."""

    plan_code: str | None
    kwh: Decimal
    minutes: int
    currency: str | None = None
    incl_vat: Decimal | None = None  # what the driver pays, 4 decimals (the invoice rounds to cents)
    excl_vat: Decimal | None = None
    vat: Decimal | None = None
    vat_rate: Decimal | None = None  # percent
    cpo_cost: Decimal | None = None  # the CPO's price, excl. VAT
    our_fees: Decimal | None = None  # our markup and session fee, excl. VAT
    tariff_version_id: int | None = None
    estimate: Estimate | None = None  # the full estimate (CPO components, our fees): the AFIR split
    unknown: PriceUnknown | None = None
    detail: str | None = None  # for support and logs, in English

    @property
    def known(self) -> bool:
        return self.unknown is None


def plan_for(account: Account | None, at: dt.datetime) -> Plan | None:
    """The plan a driver's prices are computed with: the account's plan at ``at``; Pay-as-you-go for a visitor
    (and for an account without a plan at that instant)."""
    if account is not None:
        plan = plan_at(account.id, at)
        if plan is not None:
            return plan
    return current_version(DEFAULT_PLAN_CODE)


@dataclass(frozen=True, slots=True)
class DriverPlan:
    """The plan version a book prices with, as plain values: its code and terms (what a price depends on)."""

    code: str
    terms: PlanTerms


_TERM_COLUMNS = tuple(getattr(Plan, name) for name in TERM_FIELDS)
_DEFAULT_PLAN = select(Plan.code, *_TERM_COLUMNS).where(Plan.code == bindparam("code"), Plan.superseded_at.is_(None))
_ACCOUNT_PLAN = (
    select(Plan.code, *_TERM_COLUMNS)
    .join(Subscription, Subscription.plan_id == Plan.id)
    .where(
        Subscription.account_id == bindparam("account_id"),
        Subscription.starts_at <= bindparam("at"),
        or_(Subscription.ends_at.is_(None), Subscription.ends_at > bindparam("at")),
    )
)


def driver_plan(account: Account | None, at: dt.datetime) -> DriverPlan | None:
    """:func:`plan_for` as plain values, without loading the plan as an object (one small query a search)."""
    row = None
    if account is not None:
        row = db.session.execute(_ACCOUNT_PLAN, {"account_id": account.id, "at": at}).first()
    if row is None:
        row = db.session.execute(_DEFAULT_PLAN, {"code": DEFAULT_PLAN_CODE}).first()
    if row is None:
        return None
    return DriverPlan(row[0], PlanTerms(**dict(zip(TERM_FIELDS, row[1:], strict=True))))


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


def _content_fingerprint(dialect: str) -> ColumnElement[str]:
    """A fingerprint of a version's stored JSON text: md5 on PostgreSQL (32 characters over the network instead
    of the document); SQLite has no md5 and runs in-process, so the text itself."""
    text = cast(TariffVersion.data, Text)
    return (func.md5(text) if dialect == "postgresql" else text).label("fingerprint")


@lru_cache(maxsize=4)
def _versions_statement(dialect: str) -> Select[*tuple[Any, ...]]:
    """Every version of the tariffs named, without their content (the process has it, see the module)."""
    return (
        select(
            TariffVersion.id,
            TariffVersion.country_code,
            TariffVersion.party_id,
            TariffVersion.ocpi_id_key,
            TariffVersion.last_updated,
            TariffVersion.received_at,
            TariffVersion.deleted_at,
            _content_fingerprint(dialect),
        )
        .where(
            tuple_(TariffVersion.country_code, TariffVersion.party_id, TariffVersion.ocpi_id_key).in_(
                bindparam("keys", expanding=True)
            )
        )
        .order_by(TariffVersion.last_updated)
    )


@lru_cache(maxsize=4)
def _contents_statement(dialect: str) -> Select[Any]:
    return select(TariffVersion.id, TariffVersion.data, _content_fingerprint(dialect)).where(
        TariffVersion.id.in_(bindparam("ids", expanding=True))
    )


_TIMED_RESTRICTIONS = ("start_time", "end_time", "start_date", "end_date", "day_of_week")


def _depends_on_time(tariff: Tariff) -> bool:
    """Whether the price of a session may depend on when it starts (beyond which version is in force)."""
    if tariff.start_date_time is not None or tariff.end_date_time is not None:
        return True
    return any(
        getattr(element.restrictions, name) is not None for element in tariff.elements for name in _TIMED_RESTRICTIONS
    )


@dataclass(frozen=True, slots=True)
class _Content:
    """One version's content as the process keeps it: the JSON, the parsed tariff (or why it cannot be), the
    compiled one, and whether its prices depend on the moment."""

    data: dict[str, Any]
    parsed: Tariff | PricingError
    compiled: CompiledTariff | None
    timed: bool


def _content_of(data: dict[str, Any]) -> _Content:
    try:
        parsed: Tariff | PricingError = parse_tariff(data)
    except PricingError as exc:
        parsed = exc
    if isinstance(parsed, PricingError):
        return _Content(data, parsed, None, True)
    return _Content(data, parsed, compile_tariff(parsed), _depends_on_time(parsed))


# Process-wide caches (see the module). Bounded by emptying: a full cache is cleared rather than kept ordered (a
# dict's get and set are atomic under the GIL; the worker threads may race to fill the same entry, harmlessly).
_CACHE_LIMIT = 50_000
_contents: dict[tuple[int, str], _Content] = {}
_estimates: dict[tuple[object, ...], Estimate | PricingError] = {}


def _remember(cache: dict[Any, Any], key: object, value: object) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def forget_cached_prices() -> None:
    """Empty the process's caches (tests; they are exact without it)."""
    _contents.clear()
    _estimates.clear()


class PriceBook:
    """The prices of one search (one request): tariff versions, compiled tariffs and estimates are cached in it,
    never across requests (a version's content may still change until a session freezes it)."""

    def __init__(
        self, plan: Plan | DriverPlan | None, *, at: dt.datetime, kwh: Decimal, duration: dt.timedelta
    ) -> None:
        self.plan_code: str | None = None if plan is None else plan.code
        self.terms: PlanTerms | None = None
        if isinstance(plan, DriverPlan):
            self.terms = plan.terms
        elif plan is not None:
            self.terms = terms_of(plan)
        self.at = at
        self.kwh = kwh
        self.duration = duration
        self.vat_table = {code: Decimal(str(rate)) for code, rate in current_app.config["VAT_RATES"].items()}
        self._versions: dict[TariffKey, list[Version]] = {}
        self._by_id: dict[int, Version] = {}
        self._chosen: dict[tuple[str, str, tuple[str, ...]], Version | None] = {}
        self._content: dict[int, _Content] = {}
        self._prices: dict[tuple[int, str, str, Decimal | None], SessionPrice] = {}
        self._seconds = Decimal(duration.total_seconds())

    @classmethod
    def for_driver(cls, account: Account | None, *, at: dt.datetime) -> PriceBook:
        config = current_app.config
        return cls(
            driver_plan(account, at),
            at=at,
            kwh=Decimal(str(config["FINDER_TYPICAL_SESSION_KWH"])),
            duration=dt.timedelta(minutes=int(config["FINDER_TYPICAL_SESSION_MINUTES"])),
        )

    # --- tariffs -------------------------------------------------------------------------------------------------

    def load(self, refs: Iterable[ConnectorRef]) -> None:
        """Read, in one query, every version of every tariff these connectors name (not read before)."""
        wanted = {
            (ref.country_code, ref.party_id, ci_key(tariff_id)) for ref in refs for tariff_id in ref.tariff_ids
        } - self._versions.keys()
        if not wanted:
            return
        for key in wanted:
            self._versions[key] = []
        dialect = db.session.get_bind().dialect.name
        rows = db.session.execute(_versions_statement(dialect), {"keys": list(wanted)}).all()
        missing = [row[0] for row in rows if (row[0], row[7]) not in _contents]
        if missing:
            for version_id, data, fingerprint in db.session.execute(_contents_statement(dialect), {"ids": missing}):
                _remember(_contents, (version_id, fingerprint), _content_of(data))
        for version_id, country_code, party_id, key, last_updated, received_at, deleted_at, fingerprint in rows:
            content = _contents.get((version_id, fingerprint))
            if content is None:  # changed again between the two reads: read it on its own
                data = db.session.scalar(select(TariffVersion.data).where(TariffVersion.id == version_id))
                if data is None:
                    continue  # deleted meanwhile
                content = _content_of(data)
            version = Version(
                *(version_id, country_code, party_id, key, last_updated, received_at, deleted_at),
                content.data,
                fingerprint,
            )
            self._content[version_id] = content
            self._versions[(country_code, party_id, key)].append(version)
            self._by_id[version_id] = version

    def version(self, version_id: int) -> Version | None:
        """A version this book has read (the one a price names)."""
        return self._by_id.get(version_id)

    def tariff_of(self, ref: ConnectorRef) -> Version | None:
        """The version the connector is priced with: its first tariff id with a version in force (as rating)."""
        key = (ref.country_code, ref.party_id, ref.tariff_ids)
        if key in self._chosen:
            return self._chosen[key]
        self.load((ref,))
        chosen = None
        for tariff_id in ref.tariff_ids:
            chosen = version_in_force(self._versions[(ref.country_code, ref.party_id, ci_key(tariff_id))], self.at)
            if chosen is not None:
                break
        self._chosen[key] = chosen
        return chosen

    def _content_for(self, version: Version) -> _Content:
        found = self._content.get(version.id)
        if found is None:  # a Version built elsewhere (tests): parse it here
            found = self._content[version.id] = _content_of(version.data)
        return found

    def parsed(self, version: Version) -> Tariff | PricingError:
        return self._content_for(version).parsed

    # --- prices --------------------------------------------------------------------------------------------------

    def price(self, ref: ConnectorRef) -> SessionPrice:
        """The typical session at this connector for the book's plan (see the module)."""
        if self.plan_code is None:
            return self._unknown(PriceUnknown.NO_PLAN)
        version = self.tariff_of(ref)
        if version is None:
            return self._unknown(PriceUnknown.NO_TARIFF)
        # The arguments estimate_for_connector derives, in its order: the country's alpha-2 code, the location's
        # zone (else the country's), and the EVSE's power unless the session asks more than it can give.
        country = alpha2(ref.country)
        zone = ref.time_zone or DEFAULT_ZONES.get(country, "UTC")
        max_power = ref.evse_max_power_kw
        if max_power is not None and self.kwh > max_power * self._seconds / 3600:  # as rating writes it, exactly
            max_power = None
        key = (version.id, country, zone, max_power)
        found = self._prices.get(key)
        if found is None:
            found = self._prices[key] = self._session_price(version, country, zone, max_power)
        return found

    def _session_price(self, version: Version, country: str, zone: str, max_power: Decimal | None) -> SessionPrice:
        assert self.plan_code is not None  # price() answered NO_PLAN before
        result = self._compute(version, country, zone, max_power)
        if isinstance(result, PricingError):
            return self._unknown(_why(result), version_id=version.id, detail=str(result))
        driver = result.example_driver
        return SessionPrice(
            plan_code=self.plan_code,
            kwh=self.kwh,
            minutes=self.minutes,
            currency=driver.currency,
            incl_vat=driver.incl_vat,
            excl_vat=driver.excl_vat,
            vat=driver.vat,
            vat_rate=driver.vat_rate,
            cpo_cost=driver.cpo_cost,
            our_fees=driver.margin,
            tariff_version_id=version.id,
            estimate=result,
        )

    @property
    def minutes(self) -> int:
        return int(self.duration.total_seconds() // 60)

    def _unknown(self, why: PriceUnknown, *, version_id: int | None = None, detail: str | None = None) -> SessionPrice:
        return SessionPrice(
            plan_code=self.plan_code,
            kwh=self.kwh,
            minutes=self.minutes,
            tariff_version_id=version_id,
            unknown=why,
            detail=detail,
        )

    def _compute(self, version: Version, country: str, zone: str, max_power: Decimal | None) -> Estimate | PricingError:
        assert self.terms is not None  # price() answered NO_PLAN before
        content = self._content_for(version)
        if content.compiled is None:
            assert isinstance(content.parsed, PricingError)
            return content.parsed
        if content.timed:
            return self._estimate(content.compiled, country, zone, max_power)
        # Independent of the moment: the same for every search with these inputs (see the module).
        key = (
            version.id,
            version.fingerprint,
            self.terms,
            country,
            zone,
            max_power,
            self.kwh,
            self.duration,
            self.vat_table.get(country),
        )
        found = _estimates.get(key)
        if found is None:
            found = self._estimate(content.compiled, country, zone, max_power)
            _remember(_estimates, key, found)
        return found

    def _estimate(
        self, compiled: CompiledTariff, country: str, zone: str, max_power: Decimal | None
    ) -> Estimate | PricingError:
        assert self.terms is not None
        try:
            return estimate(
                compiled,
                self.terms,
                country,
                self.kwh,
                self.duration,
                self.at,
                zone,
                max_power,
                vat_table=self.vat_table,
            )
        except PricingError as exc:
            return exc
        except (ZoneInfoNotFoundError, ValueError) as exc:  # a time_zone no zone database knows
            return PricingError(f"cannot price in time zone {zone!r}: {exc}")


def _why(error: PricingError) -> PriceUnknown:
    if isinstance(error, CurrencyMismatchError):
        return PriceUnknown.CURRENCY
    if isinstance(error, UnknownCountryError):
        return PriceUnknown.COUNTRY
    return PriceUnknown.UNPRICEABLE


def connector_refs(matching: Mapping[int, list[int] | None]) -> dict[int, list[ConnectorRef]]:
    """Per location, what the prices of its matching connectors depend on (``matching``: location id → the
    connectors' ``roaming_connectors.id``, or None for every live connector), in one query, without loading the
    locations (a price-sorted search prices every candidate in the area)."""
    explicit = [connector_id for ids in matching.values() if ids is not None for connector_id in ids]
    whole = [location_id for location_id, ids in matching.items() if ids is None]
    conditions: list[ColumnElement[bool]] = []
    if explicit:
        conditions.append(Connector.id.in_(explicit))
    if whole:
        conditions.append(and_(Evse.location_id.in_(whole), Evse.status != REMOVED))
    if not conditions:
        return {}
    rows = db.session.execute(
        select(
            Location.id,
            Location.country_code,
            Location.party_id,
            Location.country,
            Location.time_zone,
            Evse.uid,
            Evse.max_power_kw,
            Connector.connector_id,
            Connector.tariff_ids,
        )
        .select_from(Connector)
        .join(Evse, Evse.id == Connector.evse_id)
        .join(Location, Location.id == Evse.location_id)
        .where(or_(*conditions))
    )
    refs: dict[int, list[ConnectorRef]] = defaultdict(list)
    for location_id, country_code, party_id, country, zone, evse_uid, power, connector_id, tariff_ids in rows:
        refs[location_id].append(
            ConnectorRef(country_code, party_id, country, zone, evse_uid, power, connector_id, tuple(tariff_ids or ()))
        )
    return refs
