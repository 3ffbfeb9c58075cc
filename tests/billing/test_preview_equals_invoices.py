"""The preview is computed by the code that makes the invoices: after finance adjusted a held 162 kWh session to
€100, the preview said €270.88 and the invoice charged €235.90, both on the finalized run page. Over a month with
every kind of line (sessions at several VAT rates, reverse charge, subscription fees prorated by day, a credit) and
every hold decision (held, released, adjusted, written off), the preview equals the invoices to the cent."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from sqlalchemy import select

from app.audit.services import Actor
from app.billing.models import HoldStatus, Invoice, InvoiceLine, SessionHold
from app.billing.runs import holds
from app.cards import services as card_services
from app.charging.models import Cdr
from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.rating.models import SessionCharge
from app.rating.services import rate_cdr
from tests.billing.sessions import rated_session
from tests.factories import make_user

FINANCE = Actor.system("test-finance")
OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)


def _driver(plan: str, **profile):  # type: ignore[no-untyped-def]
    user = make_user(**profile)
    for stretch in plan_services.history(user.account.id):
        db.session.delete(stretch)
    db.session.flush()
    plan_services.subscribe(
        user.account, plan_services.current_version(plan), FINANCE, at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    )
    return user, card_services.issue_app_token(user.account, Actor.of(user))


def _hold(charge: SessionCharge) -> SessionHold:
    hold = SessionHold(session_charge_id=charge.id, reasons=["test: held for finance"], status=HoldStatus.HELD)
    db.session.add(hold)
    db.session.flush()
    return hold


def _credit(charge: SessionCharge) -> SessionCharge:
    """The CPO credits a session: a credit CDR referring to the original, rated as its reversal."""
    original = db.session.get_one(Cdr, charge.cdr_id)
    data = {**original.data, "id": f"{original.ocpi_id}-CREDIT", "credit": True}
    data["credit_reference_id"] = original.ocpi_id
    credit = Cdr(
        **{
            column: getattr(original, column)
            for column in (
                "country_code",
                "party_id",
                "card_id",
                "account_id",
                "token_uid",
                "start_date_time",
                "end_date_time",
                "location_ocpi_id",
                "evse_uid",
                "country",
                "currency",
                "total_energy",
                "total_time",
                "total_cost_excl_vat",
            )
        },
        ocpi_id=data["id"],
        credit=True,
        credit_reference_id=original.ocpi_id,
        original_cdr_id=original.id,
        data=data,
        last_updated=utcnow(),
    )
    db.session.add(credit)
    db.session.flush()
    return rate_cdr(credit)


def _minor(text: str) -> int:
    value = Decimal(text) * 100
    assert value == value.to_integral_value(), f"{text} is not a whole number of cents"
    return int(value)


def test_the_preview_equals_the_invoices_to_the_cent(app, db_session):
    payg, payg_card = _driver("payg", full_name="Piet Payg")
    comfort, comfort_card = _driver("comfort", full_name="Carla Comfort")
    fleet, fleet_card = _driver("business", company_name="Fleet GmbH", vat_number="DE811569869", country="DE")

    rated_session(payg.account.id, payg_card.id, OCT, kwh="20.333")
    rated_session(payg.account.id, payg_card.id, OCT + dt.timedelta(hours=3), kwh="7.777", country="NLD")
    rated_session(payg.account.id, payg_card.id, OCT + dt.timedelta(hours=6), kwh="11.1", country="LUX")
    credited = rated_session(comfort.account.id, comfort_card.id, OCT, kwh="13.4")
    _credit(credited)
    rated_session(fleet.account.id, fleet_card.id, OCT, kwh="33.3")

    adjusted = rated_session(payg.account.id, payg_card.id, OCT + dt.timedelta(days=1), kwh="162", hours=2)
    released = rated_session(comfort.account.id, comfort_card.id, OCT + dt.timedelta(days=1), kwh="55.5")
    written_off = rated_session(comfort.account.id, comfort_card.id, OCT + dt.timedelta(days=2), kwh="44.4")
    still_held = rated_session(fleet.account.id, fleet_card.id, OCT + dt.timedelta(days=2), kwh="66.6")
    holds.adjust(_hold(adjusted), FINANCE, "the CPO confirmed a metering fault", "100.00")
    holds.release(_hold(released), FINANCE, "checked with the CPO: right")
    holds.write_off(_hold(written_off), FINANCE, "goodwill")
    _hold(still_held)
    # Pay as you go until the 21st, then Comfort: its October fee is prorated by day.
    plan_services.change_plan(
        payg.account,
        plan_services.current_version("comfort"),
        FINANCE,
        now=dt.datetime(2026, 10, 21, 10, tzinfo=dt.UTC),
    )
    db.session.commit()

    cli = app.test_cli_runner()
    previewed = cli.invoke(args=["billing", "run", "--period", "2026-10", "--dry-run"])
    assert previewed.exit_code == 0, previewed.output
    preview = json.loads(previewed.output)["preview"]
    assert cli.invoke(args=["billing", "approve", "--period", "2026-10"]).exit_code == 0
    finalized = cli.invoke(args=["billing", "run", "--period", "2026-10", "--no-deliver"])
    assert finalized.exit_code == 0, finalized.output

    invoices = db.session.scalars(select(Invoice).where(Invoice.period == "2026-10")).all()
    lines = db.session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id.in_([i.id for i in invoices]))).all()
    kinds = {line.kind for line in lines}
    assert {"session", "subscription", "credit"} <= {str(kind) for kind in kinds}
    rates = sorted({Decimal(row["rate"]) for row in preview["per_vat_rate"]})
    assert len(rates) >= 3 and Decimal(0) in rates  # several countries' VAT and the reverse-charged fleet

    # Totals to the cent: excl. VAT, VAT (rounded per invoice, as issued), CPO cost, margin.
    assert sum(_minor(row["excl_vat"]) for row in preview["per_vat_rate"]) == sum(i.subtotal_minor for i in invoices)
    assert sum(_minor(row["vat"]) for row in preview["per_vat_rate"]) == sum(i.vat_minor for i in invoices)
    assert sum(_minor(row["cpo_cost"]) for row in preview["per_vat_rate"]) == sum(li.cpo_cost_minor for li in lines)
    assert sum(_minor(row["margin"]) for row in preview["per_vat_rate"]) == sum(
        li.amount_minor - li.cpo_cost_minor for li in lines
    )
    # Per VAT rate, the base and the VAT equal the invoices' VAT breakdowns added up.
    for row in preview["per_vat_rate"]:
        rate = Decimal(row["rate"])
        breakdown = [entry for i in invoices for entry in i.vat_breakdown if Decimal(str(entry["rate"])) == rate]
        assert _minor(row["excl_vat"]) == sum(entry["base"] for entry in breakdown), rate
        assert _minor(row["vat"]) == sum(entry["vat"] for entry in breakdown), rate
    # Counted alike: session and credit lines, subscription lines, the one session still held.
    session_lines = [li for li in lines if li.session_charge_id is not None]
    assert preview["sessions"] == len(session_lines) == 8  # 5 sessions, the credit, the adjusted and the released
    assert preview["subscriptions"] == len([li for li in lines if str(li.kind) == "subscription"]) == 3
    assert preview["held_sessions"] == 1
    # The adjusted session is charged at finance's €100 incl. VAT, in the preview as on the invoice.
    (adjusted_line,) = [li for li in lines if li.session_charge_id == adjusted.id]
    assert adjusted_line.amount_minor == 8264  # 100 / 1.21 = 82.64 excl. VAT
    assert written_off.id not in {li.session_charge_id for li in lines}
    assert still_held.id not in {li.session_charge_id for li in lines}
    # Per plan: sessions and fees as invoiced.
    per_plan = {row["plan"]: row for row in preview["per_plan"]}
    fees = sum(_minor(row["subscription_fees"]) for row in per_plan.values())
    assert fees == sum(li.amount_minor for li in lines if str(li.kind) == "subscription") > 0
    assert sum(row["sessions"] for row in per_plan.values()) == len(session_lines)
