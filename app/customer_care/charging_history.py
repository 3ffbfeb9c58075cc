"""An account's charging as support sees it: every CDR (priced or not) with where, who operated it, when, how much
energy, the operator's price, our fees, VAT, the total as billed, the invoice it is on and its hold; and the
sessions a CPO told us of that have no CDR yet (charging now, or the record is late).

The driver's own list (``app.billing.session_history``) shows rated sessions only, with fewer columns. The billed
total of a held session is the same rule as there: a written-off session is not charged, an adjusted one costs
what finance set, and the difference to the rated price is a correction of its own (excl. VAT), so operator
price + fees + correction + VAT = total. ``tests/customer_care/test_charging_history.py`` checks both pages agree.

A page is a fixed number of queries whatever its size: the CDRs with their charge, hold, invoice and rating
problem in one, then the places and operators of the whole page (:func:`app.customer_care.charge_points.places_of`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, select

from app.billing.models import HoldStatus, Invoice, InvoiceLine, InvoiceStatus, SessionHold
from app.charging.models import Cdr, ChargingSession
from app.charging.services import duration_minutes
from app.customer_care.charge_points import Place, Recorded, places_of
from app.extensions import db
from app.money import round_to_cents
from app.ocpi_ids import ci_key
from app.rating.models import RatingProblem, SessionCharge

PAGE_SIZE = 25
OPEN_SESSIONS_CHECKED = 20  # the newest sessions looked at for "no CDR yet"


@dataclass(frozen=True)
class CdrLine:
    """One CDR of the account. Amounts excl. VAT except ``vat`` and ``total``; None when the CDR is not priced."""

    cdr_id: int
    start: dt.datetime
    end: dt.datetime
    place: Place
    kwh: Decimal
    minutes: int
    currency: str
    credit: bool  # the CPO's credit CDR reversing an earlier one
    state: str  # invoiced, to_invoice, under_review, not_charged, not_priced
    cpo_price: Decimal | None
    fees: Decimal | None
    correction: Decimal  # finance's correction of an adjusted session (negative: lowered)
    vat: Decimal | None
    total: Decimal | None  # incl. VAT, as billed
    hold: HoldStatus | None
    invoice: str | None  # the number of the finalized invoice it is on
    not_priced_because: str | None  # the rating problem, when rating failed


@dataclass(frozen=True)
class CdrPage:
    lines: list[CdrLine]
    page: int
    has_next: bool


@dataclass(frozen=True)
class OpenSession:
    """A session a CPO reported (started, charging, or completed) for which no CDR has arrived."""

    session_id: int
    ocpi_id: str
    status: str
    start: dt.datetime
    end: dt.datetime | None
    kwh: Decimal
    place: Place
    last_updated: dt.datetime


def _cdr_query(account_id: int) -> Select[*tuple[Any, ...]]:
    """The account's CDRs, newest first, with their charge, hold, finalized invoice and rating problem."""
    return (
        select(
            Cdr,
            SessionCharge,
            SessionHold.status,
            SessionHold.adjusted_incl_vat,
            Invoice.number,
            RatingProblem.reason,
        )
        .outerjoin(SessionCharge, SessionCharge.cdr_id == Cdr.id)
        .outerjoin(SessionHold, SessionHold.session_charge_id == SessionCharge.id)
        .outerjoin(InvoiceLine, InvoiceLine.session_charge_id == SessionCharge.id)
        .outerjoin(Invoice, and_(Invoice.id == InvoiceLine.invoice_id, Invoice.status == InvoiceStatus.FINALIZED))
        .outerjoin(RatingProblem, RatingProblem.cdr_id == Cdr.id)
        .where(Cdr.account_id == account_id)
        .order_by(Cdr.start_date_time.desc(), Cdr.id.desc())
    )


def billed(
    charge: SessionCharge, hold: HoldStatus | None, adjusted: Decimal | None, invoice: str | None
) -> tuple[str, Decimal, Decimal]:
    """(state, total incl. VAT as billed, correction excl. VAT) of a rated session: the rule of the driver's
    session history (``billing.session_history``), which the invoice follows."""
    state = "invoiced" if invoice else "to_invoice"
    total, correction = charge.driver_incl_vat, Decimal(0)
    if hold == HoldStatus.HELD and not invoice:
        state = "under_review"
    elif hold == HoldStatus.WRITTEN_OFF:
        state, total = "not_charged", Decimal(0)
    elif hold == HoldStatus.ADJUSTED and adjusted is not None:
        total = adjusted
        # The base the invoice line is billed at: finance's price without VAT, rounded to cents.
        correction = round_to_cents(adjusted * 100 / (100 + charge.vat_rate)) - round_to_cents(charge.driver_excl_vat)
    return state, total, correction


def _lines(rows: list[Any]) -> list[CdrLine]:
    places = places_of(
        [
            Recorded(cdr.country_code, cdr.party_id, cdr.location_ocpi_id, cdr.evse_uid, cdr.data.get("cdr_location"))
            for cdr, *_rest in rows
        ]
    )
    lines = []
    for (cdr, charge, hold, adjusted, invoice, problem), place in zip(rows, places, strict=True):
        if charge is None:
            state, total, correction = "not_priced", None, Decimal(0)
            cpo_price = fees = vat = None
        else:
            state, total, correction = billed(charge, hold, adjusted, invoice)
            cpo_price = charge.cpo_cost_excl_vat
            fees = charge.driver_excl_vat - charge.cpo_cost_excl_vat
            vat = None if state == "not_charged" else total - charge.driver_excl_vat - correction
        lines.append(
            CdrLine(
                cdr_id=cdr.id,
                start=cdr.start_date_time,
                end=cdr.end_date_time,
                place=place,
                kwh=cdr.total_energy,
                minutes=duration_minutes(cdr),
                currency=cdr.currency,
                credit=cdr.credit,
                state=state,
                cpo_price=cpo_price,
                fees=fees,
                correction=correction,
                vat=vat,
                total=total,
                hold=hold,
                invoice=invoice,
                not_priced_because=problem if charge is None else None,
            )
        )
    return lines


def cdr_page(account_id: int, page: int = 1, page_size: int = PAGE_SIZE) -> CdrPage:
    """Page ``page`` (from 1) of the account's CDRs, newest first. No total count (it would read every CDR of a
    fleet account); one row more than a page says whether there is a next one."""
    page = max(page, 1)
    rows = db.session.execute(_cdr_query(account_id).limit(page_size + 1).offset((page - 1) * page_size)).all()
    return CdrPage(lines=_lines(list(rows[:page_size])), page=page, has_next=len(rows) > page_size)


def cdr_line(account_id: int, cdr_id: int) -> CdrLine | None:
    """One CDR of the account as the list shows it; None when it is not this account's."""
    rows = db.session.execute(_cdr_query(account_id).where(Cdr.id == cdr_id)).all()
    return _lines(list(rows))[0] if rows else None


def sessions_without_cdr(account_id: int, newest: int = OPEN_SESSIONS_CHECKED) -> list[OpenSession]:
    """Of the account's ``newest`` sessions, those no CDR names yet (charging now, or the CPO's record is late):
    two queries. A CDR names its session by the CPO's party and the session id, a CiString."""
    sessions = list(
        db.session.scalars(
            select(ChargingSession)
            .where(ChargingSession.account_id == account_id)
            .order_by(ChargingSession.start_date_time.desc(), ChargingSession.id.desc())
            .limit(newest)
        )
    )
    if not sessions:
        return []
    spellings = {spelling for session in sessions for spelling in (session.ocpi_id, session.ocpi_id_key)}
    recorded = {
        (country, party, ci_key(session_id))
        for country, party, session_id in db.session.execute(
            select(Cdr.country_code, Cdr.party_id, Cdr.session_ocpi_id).where(
                Cdr.account_id == account_id,
                # As sent, or folded: a CPO that changes the case of its own ids is still matched below.
                Cdr.session_ocpi_id.in_(spellings),
            )
        )
        if session_id
    }
    waiting = [
        session for session in sessions if (session.country_code, session.party_id, session.ocpi_id_key) not in recorded
    ]
    places = places_of([Recorded(s.country_code, s.party_id, s.location_ocpi_id, s.evse_uid) for s in waiting])
    return [
        OpenSession(
            session_id=session.id,
            ocpi_id=session.ocpi_id,
            status=session.status,
            start=session.start_date_time,
            end=session.end_date_time,
            kwh=session.kwh,
            place=place,
            last_updated=session.last_updated,
        )
        for session, place in zip(waiting, places, strict=True)
    ]
