"""The price a driver sees before charging at a connector (the price promise, AFIR split).

The CPO's published components and our fees are shown separately, with an example total computed by the same
engine that will price the session from the tariff frozen at its start — so the estimate and the invoice
cannot disagree for the same kWh and duration.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask import current_app

from app.accounts.models import Account
from app.countries import alpha2
from app.db import utcnow
from app.plans.models import Plan
from app.plans.services import plan_at, terms_of
from app.pricing import Estimate, compile_tariff, estimate, parse_tariff
from app.rating.countries import DEFAULT_ZONES
from app.rating.services import RatingError
from app.roaming.models import Location
from app.roaming.receive.locations import get_evse
from app.roaming.receive.tariffs import tariffs_for_connector

EXAMPLE_KWH = Decimal(20)
EXAMPLE_DURATION = dt.timedelta(hours=1)


def estimate_for_connector(
    location: Location,
    evse_uid: str,
    connector_id: str,
    *,
    account: Account | None = None,
    plan: Plan | None = None,
    kwh: Decimal = EXAMPLE_KWH,
    duration: dt.timedelta = EXAMPLE_DURATION,
    at: dt.datetime | None = None,
) -> Estimate:
    """Estimate charging ``kwh`` in ``duration`` from ``at`` (now) at this connector, for the account's plan at
    that moment (or ``plan``). Raises :class:`RatingError` when the connector has no tariff in force."""
    at = at or utcnow()
    if plan is None:
        if account is None:
            raise RatingError("give an account or a plan to estimate for")
        plan = plan_at(account.id, at)
        if plan is None:
            raise RatingError("the account has no plan")
    versions = tariffs_for_connector(location, evse_uid, connector_id, at)
    if not versions:
        raise RatingError(f"no tariff in force for {location.ocpi_id}/{evse_uid}/{connector_id}")
    country = alpha2(location.country)
    zone = location.time_zone or DEFAULT_ZONES.get(country, "UTC")
    evse = get_evse(location, evse_uid)  # a CiString: the EVSE in whatever case the caller wrote its uid
    max_power = evse.max_power_kw if evse is not None else None
    if max_power is not None and kwh > max_power * Decimal(duration.total_seconds()) / 3600:
        max_power = None  # the example asks for more than the charger can give: price it at its average power
    vat_table = {code: Decimal(str(rate)) for code, rate in current_app.config["VAT_RATES"].items()}
    return estimate(
        compile_tariff(parse_tariff(versions[0].data)),
        terms_of(plan),
        country,
        kwh,
        duration,
        at,
        zone,
        max_power,
        vat_table=vat_table,
    )
