"""The outlier guard: sessions beyond plausible limits are held for finance instead of billed."""

from __future__ import annotations

from decimal import Decimal

from flask import current_app
from sqlalchemy import ColumnElement, or_

from app.rating.models import SessionCharge
from app.roaming.models import Cdr

DEFAULT_LIMITS = {"max_kwh": "150", "max_average_kw": "350", "max_incl_vat": "150", "max_hours": "48"}


def limits() -> dict[str, Decimal]:
    configured = current_app.config.get("OUTLIER_LIMITS") or {}
    return {key: Decimal(str(configured.get(key, default))) for key, default in DEFAULT_LIMITS.items()}


def outlier_reasons(charge: SessionCharge, cdr: Cdr, bounds: dict[str, Decimal] | None = None) -> list[str]:
    """Why a session should be held (empty list: bill it). Credits are never held."""
    if charge.driver_incl_vat < 0:
        return []
    bounds = bounds or limits()
    reasons = []
    hours = cdr.total_time  # the CDR's own duration in hours (charging + parking), as the CPO measured it
    if charge.kwh > bounds["max_kwh"]:
        reasons.append(f"energy {charge.kwh} kWh over {bounds['max_kwh']} kWh")
    if hours > 0 and charge.kwh / hours > bounds["max_average_kw"]:
        reasons.append(f"average power {charge.kwh / hours:.0f} kW over {bounds['max_average_kw']} kW")
    if hours > bounds["max_hours"]:
        reasons.append(f"duration {hours:.1f} h over {bounds['max_hours']} h")
    if charge.driver_incl_vat > bounds["max_incl_vat"]:
        reasons.append(f"price {charge.driver_incl_vat} over {bounds['max_incl_vat']}")
    return reasons


def outlier_filter(bounds: dict[str, Decimal]) -> ColumnElement[bool]:
    """The same limits as :func:`outlier_reasons`, as SQL, to find candidates among millions of sessions."""
    return or_(SessionCharge.kwh > bounds["max_kwh"], SessionCharge.driver_incl_vat > bounds["max_incl_vat"],
               Cdr.total_time > bounds["max_hours"],
               (Cdr.total_time > 0) & (SessionCharge.kwh > Cdr.total_time * bounds["max_average_kw"]))
