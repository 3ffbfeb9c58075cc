"""Why did this session cost X? Everything support needs on one page, for one CDR of an account.

The price is built in three parts, each shown with where it comes from:

1. **The operator's price** (excl. VAT): which tariff priced it (``SessionCharge.tariff_source``: the tariff frozen
   when the session started, the tariff in the CDR, or the CDR's own total when we know no tariff), that tariff's
   price components, and the lines the engine billed (quantity × price per component). The lines are the pricing
   engine run again on the stored tariff version and CDR (pure and deterministic); the amount billed is the one
   stored with the rating, and the page says so if the two ever differ.
2. **Our fees** under the plan version the session was rated with: percentage markup, per-kWh markup and the
   session fee (lowered when the plan's monthly cap was reached).
3. **VAT** at the rate of the country where the charging took place, then the total; and what finance decided if
   the session was held (released, adjusted with its correction, written off), the invoice it is on.

Around it: the estimate (the price promise for this session's kWh and duration), the pricing notes (charging
periods counted from elsewhere than the CDR said), the authorization that let it start, the operator's own
total and any reconciliation finding, and the CDR this one credits (or that credit it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select, true

from app.billing.models import Invoice, InvoiceLine, PaymentState, SessionHold
from app.cards.models import Card
from app.charging.models import Cdr, ChargingSession
from app.countries import alpha2
from app.customer_care.authorization_history import AuthorizationLine, authorization_for_session
from app.customer_care.charging_history import CdrLine, cdr_line
from app.extensions import db
from app.ocpi_ids import ci_key
from app.plans.models import Plan
from app.pricing import PriceBreakdown, PricingError, compile_tariff, parse_cdr, parse_tariff, price_session
from app.rating.countries import DEFAULT_ZONES
from app.rating.models import ReconciliationFinding, SessionCharge
from app.rating.notes import PricingNote, pricing_notes_of
from app.roaming.models import TariffVersion

ZERO = Decimal(0)


@dataclass(frozen=True)
class Component:
    """One price component of the tariff: a price per unit of a dimension, in tariff element ``element``."""

    element: int  # 1-based, as people count
    dimension: str
    price: Decimal
    step_size: int
    vat: Decimal | None
    restrictions: tuple[tuple[str, str], ...]  # the element's OCPI restrictions, as sent


@dataclass(frozen=True)
class BilledLine:
    """What the engine billed for one component: ``quantity`` (kWh, hours or 1) × ``price`` = ``amount``."""

    element: int
    dimension: str
    quantity: Decimal
    price: Decimal
    amount: Decimal  # excl. VAT, 4 decimals


@dataclass(frozen=True)
class OperatorPrice:
    source: str  # frozen_tariff | cdr_tariffs | cdr_total_cost
    tariff_id: str | None
    tariff_version: TariffVersion | None  # for frozen_tariff
    components: list[Component]
    lines: list[BilledLine]
    bound: str | None  # MIN_PRICE / MAX_PRICE when the tariff's minimum or maximum changed the total
    recomputed: Decimal | None  # the engine's total now, to compare with ``billed``
    billed: Decimal  # the operator's price as rated (excl. VAT)
    reported: Decimal  # the operator's own total_cost excl. VAT in the CDR
    problem: str | None  # why the lines could not be shown (the tariff no longer prices this CDR...)


@dataclass(frozen=True)
class OurFees:
    plan: Plan | None
    percent: Decimal  # the plan's markup percentage
    percent_amount: Decimal
    per_kwh: Decimal
    per_kwh_amount: Decimal
    session_fee: Decimal  # charged for this session
    plan_session_fee: Decimal  # the plan's full session fee
    cap: Decimal | None  # the plan's monthly cap on session fees
    total: Decimal

    @property
    def capped(self) -> bool:
        return self.session_fee < self.plan_session_fee


@dataclass(frozen=True)
class InvoiceRef:
    number: str | None
    status: str
    payment_state: PaymentState
    amount_minor: int  # the invoice line, excl. VAT
    vat_rate: Decimal


@dataclass(frozen=True)
class SessionBreakdown:
    line: CdrLine
    cdr: Cdr
    charge: SessionCharge | None
    card: Card | None
    session: ChargingSession | None
    operator_price: OperatorPrice | None
    fees: OurFees | None
    hold: SessionHold | None
    invoice: InvoiceRef | None
    auth_method: str | None
    authorization_reference: str | None
    authorization: AuthorizationLine | None
    notes: tuple[PricingNote, ...]
    finding: ReconciliationFinding | None
    credit_of: int | None  # the CDR this credit CDR reverses
    credited_by: list[int] = field(default_factory=list)  # credit CDRs reversing this one

    @property
    def estimate(self) -> Decimal | None:
        return self.charge.estimate_incl_vat if self.charge is not None else None


def _restrictions(element: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    restrictions = element.get("restrictions") or {}
    if not isinstance(restrictions, dict):
        return ()
    return tuple(
        (str(key), ", ".join(map(str, value)) if isinstance(value, list) else str(value))
        for key, value in restrictions.items()
        if value not in (None, [], "")
    )


def components_of(tariff: dict[str, Any]) -> list[Component]:
    """The price components of an OCPI tariff object, element by element, as the CPO published them."""
    components = []
    for index, element in enumerate(tariff.get("elements") or [], start=1):
        if not isinstance(element, dict):
            continue
        for component in element.get("price_components") or []:
            if not isinstance(component, dict):
                continue
            vat = component.get("vat")
            components.append(
                Component(
                    element=index,
                    dimension=str(component.get("type", "")),
                    price=Decimal(str(component.get("price", 0))),
                    step_size=int(component.get("step_size") or 1),
                    vat=None if vat is None else Decimal(str(vat)),
                    restrictions=_restrictions(element),
                )
            )
    return components


def _cdr_tariff(data: dict[str, Any]) -> dict[str, Any] | None:
    """The tariff of the CDR that rating used (``rating.services._cdr_tariff``): the one its first charging
    period names, else the first."""
    tariffs = data.get("tariffs") or []
    if not tariffs:
        return None
    wanted = next((p.get("tariff_id") for p in data.get("charging_periods") or [] if p.get("tariff_id")), None)
    chosen: dict[str, Any] = next((tariff for tariff in tariffs if tariff.get("id") == wanted), tariffs[0])
    return chosen


def _time_zone(cdr: Cdr, location_zone: str | None) -> str:
    """The zone rating priced the session in: the location's, else the country's usual one."""
    return location_zone or DEFAULT_ZONES.get(alpha2(cdr.country), "UTC")


def _recompute(tariff: dict[str, Any], cdr: Cdr, zone: str) -> tuple[PriceBreakdown | None, str | None]:
    try:
        return price_session(compile_tariff(parse_tariff(tariff)), parse_cdr(cdr.data), zone), None
    except (PricingError, ValueError, TypeError) as error:
        return None, str(error)


def operator_price(charge: SessionCharge, cdr: Cdr, location_zone: str | None) -> OperatorPrice:
    version = db.session.get(TariffVersion, charge.tariff_version_id) if charge.tariff_version_id else None
    tariff: dict[str, Any] | None = None
    if charge.tariff_source == "frozen_tariff" and version is not None:
        tariff = version.data
    elif charge.tariff_source == "cdr_tariffs":
        tariff = _cdr_tariff(cdr.data)
    breakdown, problem = (None, None)
    if tariff is not None and not cdr.credit:
        breakdown, problem = _recompute(tariff, cdr, _time_zone(cdr, location_zone))
    lines = [
        BilledLine(line.element_index + 1, line.dimension, line.quantity, line.price, line.excl_vat)
        for line in (breakdown.lines if breakdown else ())
    ]
    return OperatorPrice(
        source=charge.tariff_source,
        tariff_id=str(tariff.get("id")) if tariff and tariff.get("id") else (version.ocpi_id if version else None),
        tariff_version=version,
        components=components_of(tariff) if tariff else [],
        lines=lines,
        bound=breakdown.bound_applied if breakdown else None,
        recomputed=breakdown.total_excl_vat if breakdown else None,
        billed=charge.cpo_cost_excl_vat,
        reported=cdr.total_cost_excl_vat,
        problem=problem,
    )


def our_fees(charge: SessionCharge) -> OurFees:
    plan = db.session.get(Plan, charge.plan_id) if charge.plan_id else None
    return OurFees(
        plan=plan,
        percent=plan.markup_percent if plan else ZERO,
        percent_amount=charge.markup_percent_amount,
        per_kwh=plan.markup_per_kwh if plan else ZERO,
        per_kwh_amount=charge.markup_per_kwh_amount,
        session_fee=charge.session_fee,
        plan_session_fee=plan.session_fee if plan else charge.session_fee,
        cap=plan.session_fee_cap_per_month if plan else None,
        total=charge.driver_excl_vat - charge.cpo_cost_excl_vat,
    )


def _invoice_of(charge: SessionCharge) -> InvoiceRef | None:
    row = db.session.execute(
        select(Invoice.number, Invoice.status, Invoice.payment_state, InvoiceLine.amount_minor, InvoiceLine.vat_rate)
        .join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
        .where(InvoiceLine.session_charge_id == charge.id)
    ).first()
    if row is None:
        return None
    number, status, payment_state, amount_minor, vat_rate = row
    return InvoiceRef(number, status.value, payment_state, amount_minor, vat_rate)


def _session_of(cdr: Cdr) -> ChargingSession | None:
    if not cdr.session_ocpi_id:
        return None
    return db.session.scalar(
        select(ChargingSession).where(
            ChargingSession.country_code == cdr.country_code,
            ChargingSession.party_id == cdr.party_id,
            ChargingSession.ocpi_id_key == ci_key(cdr.session_ocpi_id),
        )
    )


def session_breakdown(account_id: int, cdr_id: int) -> SessionBreakdown | None:
    """The whole answer for one CDR of the account; None when the CDR is not this account's."""
    line = cdr_line(account_id, cdr_id)
    if line is None:
        return None
    cdr = db.session.get_one(Cdr, cdr_id)
    charge = db.session.scalar(select(SessionCharge).where(SessionCharge.cdr_id == cdr.id))
    session = _session_of(cdr)
    told = {**(session.data if session else {}), **cdr.data}  # the CDR's word wins over the session's
    reference, method = told.get("authorization_reference"), told.get("auth_method")
    credit_of = cdr.original_cdr_id if cdr.credit else None
    return SessionBreakdown(
        line=line,
        cdr=cdr,
        charge=charge,
        card=db.session.get(Card, cdr.card_id) if cdr.card_id else None,
        session=session,
        operator_price=operator_price(charge, cdr, line.place.time_zone) if charge is not None else None,
        fees=our_fees(charge) if charge is not None else None,
        hold=db.session.scalar(select(SessionHold).where(SessionHold.session_charge_id == charge.id))
        if charge is not None
        else None,
        invoice=_invoice_of(charge) if charge is not None else None,
        auth_method=str(method) if method else None,
        authorization_reference=str(reference) if reference else None,
        authorization=authorization_for_session(account_id, str(reference) if reference else None, cdr.start_date_time),
        notes=pricing_notes_of(charge) if charge is not None else (),
        finding=db.session.scalar(select(ReconciliationFinding).where(ReconciliationFinding.cdr_id == cdr.id)),
        credit_of=credit_of,
        credited_by=_credits_of(cdr),
    )


def _credits_of(cdr: Cdr) -> list[int]:
    """The credit CDRs that name this one (over the partial index of credit references, not every CDR)."""
    if cdr.credit or cdr.ocpi_id_key is None:
        return []
    return list(
        db.session.scalars(
            select(Cdr.id).where(
                Cdr.country_code == cdr.country_code,
                Cdr.party_id == cdr.party_id,
                Cdr.credit == true(),  # "= true": matches the partial index
                Cdr.credit_reference_key == cdr.ocpi_id_key,
            )
        )
    )
