"""The driver's all-in price for a typical session at a connector, before charging.

The price is the rating estimate (:func:`app.rating.estimates.estimate_for_connector`): the CPO tariff in force
now for that connector, priced by the same engine that bills, plus our fees under the driver's plan, plus the VAT
of the country. This module computes exactly what that function computes (a test holds them equal, connector by
connector, on the shared data), but for a whole page at once: the tariff versions of all the page's connectors and
the driver's plan in one statement (:mod:`app.finder.tariff_versions`, :mod:`app.finder.driver_plan`), each
version parsed and compiled once per process, each distinct estimate (version, country, zone, power) computed
once. ``estimate_for_connector`` asks the database once per tariff id and parses the tariff on every call, ~1 ms a
connector: a page of 20 results would spend its whole budget there.

Across searches (per process) an estimate is kept too, keyed by everything it depends on (version and
fingerprint, the plan's terms, country, zone, EVSE power, the typical session, the country's VAT rate), but only
for a tariff whose price cannot depend on the moment: no time of day, day of week or date restriction and no
validity period. Any other tariff is priced at the search's instant.

A connector without a tariff in force, or whose tariff cannot be priced for this driver (another currency than
the plan's, a country without a VAT rate), has an *unknown* price that says why; the finder never guesses one.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfoNotFoundError

from flask import current_app

from app.accounts.models import Account
from app.countries import alpha2
from app.finder.driver_plan import DriverPlan, plan_params
from app.finder.tariff_versions import (
    TariffContent,
    TariffKey,
    Version,
    content_of,
    forget_contents,
    read_versions,
    remember,
    version_in_force,
)
from app.ocpi_ids import ci_key
from app.plans.models import Plan
from app.plans.services import terms_of
from app.pricing import (
    CompiledTariff,
    CurrencyMismatchError,
    Estimate,
    PlanTerms,
    PricingError,
    Tariff,
    UnknownCountryError,
    estimate,
)
from app.rating.countries import DEFAULT_ZONES

REMOVED = "REMOVED"


class PriceUnknown(enum.StrEnum):
    """Why a connector has no price (the doors word it)."""

    NO_PLAN = "no_plan"  # no plan to price with (the standard plans are not seeded)
    NO_TARIFF = "no_tariff"  # the connector names no tariff we hold in force now
    CURRENCY = "currency"  # the tariff is in another currency than the driver's plan
    COUNTRY = "country"  # no VAT rate for the country of the location
    UNPRICEABLE = "unpriceable"  # the tariff cannot price the typical session (see ``detail``)


# Everything a connector's price depends on besides the book: its party, its location's country and zone, its
# EVSE's power and its tariff ids. Connectors with the same key have the same price.
PriceKey = tuple[str, str, str, str | None, Decimal | None, tuple[str, ...]]


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


# Estimates independent of the moment, per process (see the module).
_estimates: dict[tuple[object, ...], Estimate | PricingError] = {}


def forget_cached_prices() -> None:
    """Empty the process's caches (tests; they are exact without it)."""
    forget_contents()
    _estimates.clear()


class PriceBook:
    """The prices of one search (one request): tariff versions, compiled tariffs and estimates are cached in it,
    never across requests (a version's content may still change until a session freezes it).

    Built for a driver (:meth:`for_driver`), the book reads the driver's plan with the first tariff versions it
    reads (one statement), or on its own when a price is asked before any version was read."""

    def __init__(
        self,
        plan: Plan | DriverPlan | None,
        *,
        at: dt.datetime,
        kwh: Decimal,
        duration: dt.timedelta,
        plan_query: Mapping[str, object] | None = None,
    ) -> None:
        self._plan_query = plan_query  # set: the plan is still to be read, with these parameters
        self._plan_code: str | None = None
        self._terms: PlanTerms | None = None
        if plan_query is None:
            self._set_plan(plan)
        self.at = at
        self.kwh = kwh
        self.duration = duration
        self.minutes = int(duration.total_seconds() // 60)
        self.vat_table = {code: Decimal(str(rate)) for code, rate in current_app.config["VAT_RATES"].items()}
        self._versions: dict[TariffKey, list[Version]] = {}
        self._by_id: dict[int, Version] = {}
        self._chosen: dict[tuple[str, str, tuple[str, ...]], Version | None] = {}
        self._content: dict[int, TariffContent] = {}
        self._prices: dict[tuple[int, str, str, Decimal | None], SessionPrice] = {}
        self._by_key: dict[PriceKey, SessionPrice] = {}
        self._seconds = Decimal(duration.total_seconds())

    @classmethod
    def for_driver(cls, account: Account | None, *, at: dt.datetime) -> PriceBook:
        config = current_app.config
        return cls(
            None,
            at=at,
            kwh=Decimal(str(config["FINDER_TYPICAL_SESSION_KWH"])),
            duration=dt.timedelta(minutes=int(config["FINDER_TYPICAL_SESSION_MINUTES"])),
            plan_query=plan_params(account, at),
        )

    # --- the plan -------------------------------------------------------------------------------------------------

    def _set_plan(self, plan: Plan | DriverPlan | None) -> None:
        self._plan_query = None
        self._plan_code = None if plan is None else plan.code
        if isinstance(plan, DriverPlan):
            self._terms = plan.terms
        elif plan is not None:
            self._terms = terms_of(plan)

    def _read_plan(self) -> None:
        if self._plan_query is not None:
            self._set_plan(read_versions((), self._plan_query).plan)

    @property
    def plan_code(self) -> str | None:
        self._read_plan()
        return self._plan_code

    @property
    def terms(self) -> PlanTerms | None:
        self._read_plan()
        return self._terms

    # --- tariffs -------------------------------------------------------------------------------------------------

    def load_keys(self, keys: Iterable[TariffKey]) -> None:
        """Read, in one statement, every version of these tariffs (those not read before), and the driver's plan
        if it is still to be read."""
        wanted = set(keys) - self._versions.keys()
        if not wanted:
            return
        found = read_versions(wanted, self._plan_query)
        if self._plan_query is not None:
            self._set_plan(found.plan)
        self._versions.update(found.by_key)
        self._content.update(found.contents)
        for versions in found.by_key.values():
            for version in versions:
                self._by_id[version.id] = version

    def version(self, version_id: int) -> Version | None:
        """A version this book has read (the one a price names)."""
        return self._by_id.get(version_id)

    def _tariff_of(self, country_code: str, party_id: str, tariff_ids: tuple[str, ...]) -> Version | None:
        """The version a connector is priced with: its first tariff id with a version in force (as rating)."""
        key = (country_code, party_id, tariff_ids)
        if key in self._chosen:
            return self._chosen[key]
        keys = [(country_code, party_id, ci_key(tariff_id)) for tariff_id in tariff_ids]
        if any(tariff not in self._versions for tariff in keys):
            self.load_keys(keys)
        chosen = None
        for tariff in keys:
            chosen = version_in_force(self._versions[tariff], self.at)
            if chosen is not None:
                break
        self._chosen[key] = chosen
        return chosen

    def _content_for(self, version: Version) -> TariffContent:
        found = self._content.get(version.id)
        if found is None:  # a Version built elsewhere (tests): parse it here
            found = self._content[version.id] = content_of(version.data)
        return found

    def parsed(self, version: Version) -> Tariff | PricingError:
        return self._content_for(version).parsed

    # --- prices --------------------------------------------------------------------------------------------------

    def price_of(self, key: PriceKey) -> SessionPrice:
        """The typical session at a connector for the book's plan (see the module), by the connector's
        :data:`PriceKey` (connectors with the same key share one answer)."""
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = self._price(*key)
        return found

    def _price(
        self,
        country_code: str,
        party_id: str,
        location_country: str,
        time_zone: str | None,
        max_power: Decimal | None,
        tariff_ids: tuple[str, ...],
    ) -> SessionPrice:
        if self.plan_code is None:
            return self._unknown(PriceUnknown.NO_PLAN)
        version = self._tariff_of(country_code, party_id, tariff_ids)
        if version is None:
            return self._unknown(PriceUnknown.NO_TARIFF)
        # The arguments estimate_for_connector derives, in its order: the country's alpha-2 code, the location's
        # zone (else the country's), and the EVSE's power unless the session asks more than it can give.
        country = alpha2(location_country)
        zone = time_zone or DEFAULT_ZONES.get(country, "UTC")
        if max_power is not None and self.kwh > max_power * self._seconds / 3600:  # as rating writes it, exactly
            max_power = None
        key = (version.id, country, zone, max_power)
        found = self._prices.get(key)
        if found is None:
            found = self._prices[key] = self._session_price(version, country, zone, max_power)
        return found

    def _session_price(self, version: Version, country: str, zone: str, max_power: Decimal | None) -> SessionPrice:
        assert self._plan_code is not None  # _price() answered NO_PLAN before
        result = self._compute(version, country, zone, max_power)
        if isinstance(result, PricingError):
            return self._unknown(_why(result), version_id=version.id, detail=str(result))
        driver = result.example_driver
        return SessionPrice(
            plan_code=self._plan_code,
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
        terms = self._terms
        assert terms is not None  # _price() answered NO_PLAN before
        content = self._content_for(version)
        if content.compiled is None:
            assert isinstance(content.parsed, PricingError)
            return content.parsed
        if content.timed:
            return self._estimate(content.compiled, terms, country, zone, max_power)
        # Independent of the moment: the same for every search with these inputs (see the module).
        key = (
            version.id,
            version.fingerprint,
            terms,
            country,
            zone,
            max_power,
            self.kwh,
            self.duration,
            self.vat_table.get(country),
        )
        found = _estimates.get(key)
        if found is None:
            found = self._estimate(content.compiled, terms, country, zone, max_power)
            remember(_estimates, key, found)
        return found

    def _estimate(
        self, compiled: CompiledTariff, terms: PlanTerms, country: str, zone: str, max_power: Decimal | None
    ) -> Estimate | PricingError:
        try:
            return estimate(
                compiled, terms, country, self.kwh, self.duration, self.at, zone, max_power, vat_table=self.vat_table
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
