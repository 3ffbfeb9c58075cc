"""One of a driver's sessions with its price built up part by part, for the portal's session page.

The same figures as the sessions list and the invoice (``session_history``: state, total, finance's correction),
with what they are made of: the operator's price per part (energy, time, parking, fixed fee, reservation: the
rating's stored breakdown) and the tariff that priced it, our fees under the plan the session was rated with, the
VAT, the card and the invoice it is on. Read-only; another account's session is None (the page answers 404).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from app.billing.session_history import SessionFilters, SessionLine, _line, _sessions_query
from app.cards.models import Card
from app.charging.models import Cdr
from app.charging.services import place_in_cdr
from app.extensions import db
from app.plans.models import Plan
from app.rating.models import SessionCharge
from app.roaming.models import TariffVersion

# The parts of the operator's price in the rating's breakdown (its "cpo": ``PriceBreakdown.to_json_dict``), in the
# order the page lists them, with the key of the quantity each is billed on (None: a fee, no quantity).
OPERATOR_PARTS = (
    ("energy", "total_energy_cost", "total_energy"),
    ("time", "total_time_cost", "total_time"),
    ("parking", "total_parking_cost", "total_parking_time"),
    ("fixed", "total_fixed_cost", None),
    ("reservation", "total_reservation_cost", None),
)


@dataclass(frozen=True)
class OperatorPart:
    kind: str  # energy | time | parking | fixed | reservation (named in the driver's language by the page)
    quantity: Decimal | None  # kWh for energy, hours for time and parking
    amount: Decimal  # excl. VAT


@dataclass(frozen=True)
class SessionDetail:
    line: SessionLine
    end: dt.datetime
    evse_id: str | None
    operator_parts: list[OperatorPart]  # empty when the CDR's own total priced it (no tariff known)
    operator_price: Decimal  # excl. VAT, as rated
    tariff_source: str  # frozen_tariff | cdr_tariffs | cdr_total_cost
    tariff_id: str | None
    tariff_updated: dt.datetime | None  # the version of the tariff that priced it (frozen tariffs)
    plan: Plan | None
    markup_percent: Decimal  # the plan's percentage, and what it came to
    markup_percent_amount: Decimal
    markup_per_kwh: Decimal
    markup_per_kwh_amount: Decimal
    session_fee: Decimal
    fees: Decimal  # our fees, excl. VAT
    excl_vat: Decimal  # as rated: operator price + fees
    vat_rate: Decimal
    vat_amount: Decimal
    country: str  # where the charging took place: whose VAT applies
    card: Card | None


def _operator_parts(breakdown: dict[str, object]) -> list[OperatorPart]:
    parts = []
    for kind, cost_key, quantity_key in OPERATOR_PARTS:
        cost = breakdown.get(cost_key)
        if not isinstance(cost, dict) or cost.get("excl_vat") is None:
            continue
        amount = Decimal(str(cost["excl_vat"]))
        if amount == 0:
            continue
        quantity = breakdown.get(quantity_key) if quantity_key else None
        parts.append(OperatorPart(kind, Decimal(str(quantity)) if quantity is not None else None, amount))
    return parts


def _tariff_id(charge: SessionCharge, cdr: Cdr) -> tuple[str | None, dt.datetime | None]:
    if charge.tariff_version_id is not None:
        version = db.session.get(TariffVersion, charge.tariff_version_id)
        if version is not None:
            return version.ocpi_id, version.last_updated
    if charge.tariff_source == "cdr_tariffs":
        tariffs = cdr.data.get("tariffs") or []
        first = tariffs[0] if tariffs and isinstance(tariffs[0], dict) else {}
        tariff_id = first.get("id")
        return (tariff_id if isinstance(tariff_id, str) else None), None
    return None, None


def session_detail(account_id: int, cdr_id: int) -> SessionDetail | None:
    """The session of CDR ``cdr_id`` if it is one of ``account_id``'s rated sessions, else None."""
    row = db.session.execute(_sessions_query(account_id, SessionFilters()).where(Cdr.id == cdr_id)).first()
    if row is None:
        return None
    line = _line(row)
    charge, cdr = row[0], row[1]
    tariff_id, tariff_updated = _tariff_id(charge, cdr)
    plan = db.session.get(Plan, charge.plan_id) if charge.plan_id is not None else None
    card = db.session.get(Card, cdr.card_id) if cdr.card_id is not None else None
    return SessionDetail(
        line=line,
        end=cdr.end_date_time,
        evse_id=place_in_cdr(cdr).evse_id,
        operator_parts=_operator_parts((charge.breakdown or {}).get("cpo") or {}),
        operator_price=charge.cpo_cost_excl_vat,
        tariff_source=charge.tariff_source,
        tariff_id=tariff_id,
        tariff_updated=tariff_updated,
        plan=plan,
        markup_percent=plan.markup_percent if plan is not None else Decimal(0),
        markup_percent_amount=charge.markup_percent_amount,
        markup_per_kwh=plan.markup_per_kwh if plan is not None else Decimal(0),
        markup_per_kwh_amount=charge.markup_per_kwh_amount,
        session_fee=charge.session_fee,
        fees=charge.driver_excl_vat - charge.cpo_cost_excl_vat,
        excl_vat=charge.driver_excl_vat,
        vat_rate=charge.vat_rate,
        vat_amount=charge.vat_amount,
        country=charge.country,
        card=card if card is not None and card.account_id == account_id else None,
    )
