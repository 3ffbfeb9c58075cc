"""The monthly run in batches: set-based composition equal to one account at a time, a batch written in one
transaction with its numbers, a chunk delivered twice done once; the "priced far from its estimate" outlier
rule from rating to the hold; the SEPA mandate reference frozen into the invoice and its UBL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
from lxml import etree
from sqlalchemy import func, select

from app.audit.services import Actor
from app.billing.documents.ubl import render_ubl
from app.billing.invoicing import composition
from app.billing.invoicing.numbering import invoice_payment_reference, printed_reference
from app.billing.invoicing.outliers import limits, outlier_reasons
from app.billing.models import Invoice, InvoiceLine, RunItem, SessionHold
from app.billing.runs import batches
from app.billing.runs import services as runs
from app.cards import services as card_services
from app.charging.models import Cdr
from app.extensions import db
from app.plans import services as plan_services
from app.rating.estimates import estimate_for_connector
from app.rating.services import rate_cdr
from app.roaming.receive.locations import upsert_location
from app.roaming.receive.tariffs import store_tariff
from tests.billing.conftest import save_method
from tests.billing.sessions import rated_session
from tests.factories import make_user, one_connector_location
from tests.payments import stripe_js

FINANCE = Actor.system("test-finance")
OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)
UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def _driver(plan: str = "payg", since: dt.datetime = dt.datetime(2026, 9, 1, tzinfo=dt.UTC), **profile):  # type: ignore[no-untyped-def]
    user = make_user(**profile)
    for stretch in plan_services.history(user.account.id):
        db.session.delete(stretch)
    db.session.flush()
    plan_services.subscribe(user.account, plan_services.current_version(plan), FINANCE, at=since)
    card = card_services.issue_app_token(user.account, Actor.of(user))
    return user, card


def _run(app, period: str = "2026-10") -> dict:  # type: ignore[no-untyped-def]
    cli = app.test_cli_runner()
    preview = cli.invoke(args=["billing", "run", "--period", period, "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert cli.invoke(args=["billing", "approve", "--period", period]).exit_code == 0
    final = cli.invoke(args=["billing", "run", "--period", period, "--no-deliver"])
    assert final.exit_code == 0, final.output
    return json.loads(preview.output)


# --- set-based composition and writing ------------------------------------------------------------------------


def test_batch_composition_equals_one_account_at_a_time(app, db_session):
    payg, payg_card = _driver("payg")
    comfort, comfort_card = _driver("comfort")
    upgraded, upgraded_card = _driver("payg")
    plan_services.change_plan(
        upgraded.account,
        plan_services.current_version("comfort"),
        FINANCE,
        now=dt.datetime(2026, 10, 21, 10, tzinfo=dt.UTC),
    )
    idle, _card = _driver("payg")
    rated_session(payg.account.id, payg_card.id, OCT, kwh="20")
    rated_session(payg.account.id, payg_card.id, OCT - dt.timedelta(days=25), kwh="7")  # a late September CDR
    rated_session(comfort.account.id, comfort_card.id, OCT, kwh="30", country="NLD")
    rated_session(upgraded.account.id, upgraded_card.id, OCT + dt.timedelta(days=12), kwh="12.5")
    accounts = [payg.account, comfort.account, upgraded.account, idle.account]

    together = composition.compose_many(accounts, "2026-10", hold_outliers=False)
    alone = [composition.compose(account, "2026-10", hold_outliers=False) for account in accounts]

    assert [c.account.id for c in together] == [account.id for account in accounts]
    for batch, single in zip(together, alone, strict=True):
        assert batch.lines == single.lines and batch.vat == single.vat and batch.total_minor == single.total_minor
    assert together[3].lines == []
    assert [line.kind.value for line in together[0].lines] == ["session", "session"]  # late CDR first, by start
    # Comfort from the 21st (upgrade at once): 11 of 31 days of 4.99.
    assert [(line.description, line.amount_minor) for line in together[2].lines[:1]] == [("Comfort, 11/31", 177)]
    fees = plan_services.prorated_monthly_fees_many([a.id for a in accounts], 2026, 10)
    assert set(fees) == {comfort.account.id, upgraded.account.id}
    assert fees[upgraded.account.id] == plan_services.prorated_monthly_fees(upgraded.account.id, 2026, 10)


def test_a_batch_numbers_in_account_order_and_a_second_delivery_changes_nothing(app, db_session):
    drivers = [_driver() for _ in range(4)]
    for user, card in drivers:
        rated_session(user.account.id, card.id, OCT)
    run = runs.preview("2026-10", FINANCE)
    runs.approve(run, FINANCE)
    runs.start_finalizing(run, FINANCE)
    db.session.commit()
    chunk = runs.pending_chunks(run)[0]

    batches.process_items(chunk)
    batches.process_items(chunk)  # the same Celery chunk delivered again (acks_late after a worker restart)

    found = db.session.execute(
        select(Invoice.sequence, Invoice.account_id, Invoice.number).order_by(Invoice.sequence)
    ).all()
    assert [row.sequence for row in found] == [1, 2, 3, 4]
    assert [row.account_id for row in found] == sorted(user.account.id for user, _card in drivers)
    items = db.session.execute(select(RunItem.status, RunItem.invoice_id, RunItem.account_id)).all()
    invoice_of = {row.account_id: row for row in db.session.scalars(select(Invoice))}
    assert all(item.status == "done" and item.invoice_id == invoice_of[item.account_id].id for item in items)
    snapshot = invoice_of[drivers[0][0].account.id].snapshot
    assert snapshot["number"] == invoice_of[drivers[0][0].account.id].number
    # The structured payment reference follows the number's sequence: +++260/0000/00170+++ is INV-2026-000001's.
    first = invoice_of[drivers[0][0].account.id]
    assert first.payment_reference == invoice_payment_reference(first.issue_date.year, first.sequence, "BE")
    assert snapshot["payment"]["reference"] == printed_reference(first.payment_reference)
    assert db.session.scalar(select(func.count(InvoiceLine.id))) == 4
    assert runs.complete_if_done(run.id)


def test_an_item_whose_invoice_already_exists_is_marked_done_not_invoiced_again(app, db_session):
    (first, first_card), (second, second_card) = _driver(), _driver()
    rated_session(first.account.id, first_card.id, OCT)
    rated_session(second.account.id, second_card.id, OCT)
    run = runs.preview("2026-10", FINANCE)
    runs.approve(run, FINANCE)
    runs.start_finalizing(run, FINANCE)
    db.session.commit()
    items = {item.account_id: item.id for item in db.session.scalars(select(RunItem))}
    batches.process_items([items[first.account.id]])
    # A crash after the commit but before the caller noticed: the item is reset to pending by hand.
    db.session.execute(RunItem.__table__.update().values(status="pending", invoice_id=None))
    db.session.commit()

    batches.process_items(list(items.values()))

    assert db.session.scalar(select(func.count(Invoice.id))) == 2
    assert sorted(db.session.scalars(select(Invoice.sequence))) == [1, 2]
    assert {item.status for item in db.session.scalars(select(RunItem))} == {"done"}


def test_a_batch_that_dies_before_commit_leaves_nothing_and_resumes_gapless(app, db_session, monkeypatch):
    drivers = [_driver() for _ in range(3)]
    for user, card in drivers:
        rated_session(user.account.id, card.id, OCT)
    db.session.commit()
    cli = app.test_cli_runner()
    cli.invoke(args=["billing", "run", "--period", "2026-10", "--dry-run"])
    cli.invoke(args=["billing", "approve", "--period", "2026-10"])
    real = runs.finalize_compositions

    def killed(compositions, run_id=None):  # type: ignore[no-untyped-def]
        real(compositions, run_id)  # numbers taken and invoices written, then the process dies
        raise SystemError("killed")

    monkeypatch.setattr(runs, "finalize_compositions", killed)
    cli.invoke(args=["billing", "run", "--period", "2026-10", "--no-deliver"])
    assert db.session.scalar(select(func.count(Invoice.id))) == 0
    assert db.session.scalar(select(func.count(InvoiceLine.id))) == 0
    assert {item.status for item in db.session.scalars(select(RunItem))} == {"failed"}

    monkeypatch.setattr(runs, "finalize_compositions", real)
    resumed = cli.invoke(args=["billing", "run", "--period", "2026-10", "--no-deliver"])
    assert resumed.exit_code == 0, resumed.output
    assert sorted(db.session.scalars(select(Invoice.sequence))) == [1, 2, 3]
    assert runs.uninvoiced_sessions("2026-10") == []


def test_the_invoice_shows_the_session_fees_and_the_cap_of_the_plan(app, db_session):
    business, business_card = _driver("business", company_name="Peeters Logistiek BV", vat_number="BE0403170701")
    payg, payg_card = _driver("payg")
    for day in range(3):
        rated_session(business.account.id, business_card.id, OCT + dt.timedelta(days=day))
        rated_session(payg.account.id, payg_card.id, OCT + dt.timedelta(days=day))
    _run(app)
    fees = {invoice.account_id: invoice.snapshot["session_fees"] for invoice in db.session.scalars(select(Invoice))}
    assert fees[business.account.id] == {"charged": 75, "cap": 1000}  # 3 × 0.25, capped at 10.00 a month
    assert fees[payg.account.id] == {"charged": 105, "cap": None}  # 3 × 0.35, no cap on pay as you go


def test_the_preview_adds_up_to_what_the_invoices_charge_subscription_fees_included(app, db_session):
    comfort, comfort_card = _driver("comfort")
    upgraded, upgraded_card = _driver("payg")
    plan_services.change_plan(
        upgraded.account,
        plan_services.current_version("comfort"),
        FINANCE,
        now=dt.datetime(2026, 10, 21, 10, tzinfo=dt.UTC),
    )
    abroad, abroad_card = _driver("business", company_name="Fleet GmbH", vat_number="DE811569869", country="DE")
    for user, card in ((comfort, comfort_card), (upgraded, upgraded_card), (abroad, abroad_card)):
        rated_session(user.account.id, card.id, OCT, kwh="17")

    preview = _run(app)["preview"]

    invoices = db.session.scalars(select(Invoice)).all()
    subscription_lines = [line for invoice in invoices for line in invoice.lines if line.kind == "subscription"]
    assert preview["subscriptions"] == len(subscription_lines) == 3  # pay as you go has no monthly fee
    previewed_excl = sum(Decimal(row["excl_vat"]) for row in preview["per_vat_rate"])
    invoiced_excl = Decimal(sum(invoice.subtotal_minor for invoice in invoices)) / 100
    lines = sum(len(invoice.lines) for invoice in invoices)
    assert abs(previewed_excl - invoiced_excl) <= Decimal("0.005") * lines  # each line rounded once
    fees = {row["plan"]: Decimal(row["subscription_fees"]) for row in preview["per_plan"]}
    assert fees["comfort v1"] > 0 and fees["business v1"] > 0 and fees.get("payg v1", Decimal(0)) == 0
    zero_rated = [row for row in preview["per_vat_rate"] if Decimal(row["rate"]) == 0]
    assert zero_rated and Decimal(zero_rated[0]["vat"]) == 0  # the German business buyer: reverse charge


# --- priced far from its estimate ----------------------------------------------------------------------------

TARIFF = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "T-EST",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.45, "vat": 21.0, "step_size": 1},
                {"type": "FLAT", "price": 0.35, "vat": 21.0, "step_size": 1},
            ]
        }
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}
LOCATION = one_connector_location("T-EST")


def _cdr_priced_by_its_total_cost(
    account_id: int, card_id: int, ocpi_id: str, start: dt.datetime, total_cost: str
) -> Cdr:
    """A CDR with no session (so no frozen tariff) and no tariff inside: rated from its own total_cost."""
    end = start + dt.timedelta(hours=1)
    cdr = Cdr(
        country_code="NL",
        party_id="TCP",
        ocpi_id=ocpi_id,
        card_id=card_id,
        account_id=account_id,
        token_uid="X",
        start_date_time=start,
        end_date_time=end,
        location_ocpi_id="LOC-EST",
        evse_uid="E1",
        country="NLD",
        currency="EUR",
        total_energy=Decimal(20),
        total_time=Decimal(1),
        total_cost_excl_vat=Decimal(total_cost),
        last_updated=end,
        data={
            "start_date_time": start.isoformat(),
            "end_date_time": end.isoformat(),
            "currency": "EUR",
            "cdr_location": {
                "id": "LOC-EST",
                "name": "Utrecht Centraal",
                "city": "Utrecht",
                "evse_uid": "E1",
                "evse_id": "NL*TCP*E1",
                "connector_id": "1",
            },
            "charging_periods": [
                {"start_date_time": start.isoformat(), "dimensions": [{"type": "ENERGY", "volume": 20}]}
            ],
            "total_cost": {"excl_vat": total_cost},
        },
    )
    db.session.add(cdr)
    db.session.flush()
    return cdr


def test_a_session_billed_far_from_its_estimate_is_held_for_finance(app, db_session):
    store_tariff(TARIFF, partner=None, country_code="NL", party_id="TCP")
    location = upsert_location(LOCATION, partner=None, country_code="NL", party_id="TCP")
    user, card = _driver("payg")
    shown = estimate_for_connector(location, "E1", "1", account=user.account, at=OCT)
    # The connector promised 20 × 0.45 + 0.35 = 9.35 (CPO) + 20 × 0.05 + 0.35 (ours) = 10.70 + 21 % = 12.947.
    assert shown.example_driver.incl_vat == Decimal("12.9470")

    as_promised = rate_cdr(_cdr_priced_by_its_total_cost(user.account.id, card.id, "CDR-OK", OCT, "9.35"))
    overpriced = rate_cdr(
        _cdr_priced_by_its_total_cost(user.account.id, card.id, "CDR-FAR", OCT + dt.timedelta(days=1), "60.00")
    )
    assert as_promised.tariff_source == overpriced.tariff_source == "cdr_total_cost"
    assert as_promised.estimate_incl_vat == overpriced.estimate_incl_vat == shown.example_driver.incl_vat
    assert as_promised.driver_incl_vat == as_promised.estimate_incl_vat
    assert overpriced.driver_incl_vat == Decimal("74.2335")  # (60 + 1.35) × 1.21: far over, yet under 150
    frozen = rated_session(user.account.id, card.id, OCT + dt.timedelta(days=2))  # CDR's own tariff, no location
    assert frozen.estimate_incl_vat is None
    db.session.commit()

    preview = _run(app)

    assert preview["preview"]["held_sessions"] == 1
    hold = db.session.scalar(select(SessionHold))
    assert hold.session_charge_id == overpriced.id
    assert hold.reasons == ["price 74.2335 is 473 % from its estimate 12.9470 (limit 50 % and 10)"]
    invoice = db.session.scalar(select(Invoice))
    assert sorted(line.session_charge_id for line in invoice.lines) == sorted([as_promised.id, frozen.id])
    assert runs.uninvoiced_sessions("2026-10") == []  # held, not lost


def test_backfilled_estimates_let_the_guard_check_sessions_rated_before_estimates_were_kept(app, db_session):
    store_tariff(TARIFF, partner=None, country_code="NL", party_id="TCP")
    location = upsert_location(LOCATION, partner=None, country_code="NL", party_id="TCP")
    user, card = _driver("payg")
    shown = estimate_for_connector(location, "E1", "1", account=user.account, at=OCT)
    as_promised = rate_cdr(_cdr_priced_by_its_total_cost(user.account.id, card.id, "CDR-OLD-OK", OCT, "9.35"))
    overpriced = rate_cdr(
        _cdr_priced_by_its_total_cost(user.account.id, card.id, "CDR-OLD-FAR", OCT + dt.timedelta(days=1), "60.00")
    )
    no_location = rated_session(user.account.id, card.id, OCT + dt.timedelta(days=2))
    september = rate_cdr(
        _cdr_priced_by_its_total_cost(user.account.id, card.id, "CDR-SEPT", OCT - dt.timedelta(days=15), "9.35")
    )
    for charge in (as_promised, overpriced, september):  # rated before the column existed
        charge.estimate_incl_vat = None
    db.session.commit()

    result = app.test_cli_runner().invoke(
        args=["rating", "backfill-estimates", "--since", "2026-10-01", "--batch-size", "1"]
    )  # one committed batch per session

    assert result.exit_code == 0, result.output
    assert "estimates stored: 2; no tariff known for the connector: 1" in result.output
    db.session.expire_all()
    assert as_promised.estimate_incl_vat == overpriced.estimate_incl_vat == shown.example_driver.incl_vat
    assert no_location.estimate_incl_vat is None
    assert september.estimate_incl_vat is None  # before --since: left alone
    preview = _run(app)
    assert preview["preview"]["held_sessions"] == 1
    assert db.session.scalar(select(SessionHold)).session_charge_id == overpriced.id


def test_estimate_rule_needs_both_the_percentage_and_the_floor(app, db_session):
    bounds = limits()
    assert (bounds["max_estimate_deviation_pct"], bounds["min_estimate_deviation"]) == (Decimal(50), Decimal(10))

    def reasons(billed: str, estimate: str | None, bounds: dict[str, Decimal] = bounds) -> list[str]:
        row = SimpleNamespace(
            kwh=Decimal(10),
            total_time=Decimal(1),
            driver_incl_vat=Decimal(billed),
            estimate_incl_vat=Decimal(estimate) if estimate is not None else None,
        )
        return outlier_reasons(row, row, bounds)

    assert reasons("0.80", "0.40") == []  # +100 %, but only 0.40: a cheap session never trips it
    assert reasons("110", "95") == []  # 15 over, but only +16 %
    assert reasons("30", None) == []  # no estimate known: the other limits still apply
    assert reasons("30", "18") == ["price 30 is 67 % from its estimate 18 (limit 50 % and 10)"]
    assert reasons("2", "25") == ["price 2 is 92 % from its estimate 25 (limit 50 % and 10)"]  # under, too
    assert reasons("12", "0") == ["price 12 is far from its estimate 0 (limit 50 % and 10)"]
    assert reasons("-30", "18") == []  # credits are never held
    app.config["OUTLIER_LIMITS"] = {**app.config["OUTLIER_LIMITS"], "max_estimate_deviation_pct": "10"}
    try:
        assert len(reasons("110", "95", limits())) == 1  # configurable
    finally:
        app.config["OUTLIER_LIMITS"] = {
            key: value for key, value in app.config["OUTLIER_LIMITS"].items() if key != "max_estimate_deviation_pct"
        }


# --- SEPA mandate in the snapshot ----------------------------------------------------------------------------


@pytest.mark.usefixtures("stripe_app")
def test_the_sepa_mandate_reference_is_frozen_into_the_invoice_and_its_ubl(app, db_session, localstripe):
    sepa_user, sepa_card = _driver()
    sepa_user.account.company_name = "Peeters Logistiek BV"
    sepa_user.account.vat_number = "BE0403170701"
    card_user, card_card = _driver()
    method = save_method(sepa_user.account, localstripe, stripe_js.sepa(stripe_js.IBAN_OK, email=sepa_user.email))
    save_method(card_user.account, localstripe, stripe_js.card())
    # The emulator's mandate reference (real Stripe: the SetupIntent's Mandate, sepa_debit.reference).
    assert method.mandate_reference == "NXDSYREGC9PSMKWY"
    rated_session(sepa_user.account.id, sepa_card.id, OCT)
    rated_session(card_user.account.id, card_card.id, OCT)
    db.session.commit()

    _run(app)

    invoice_of = {invoice.account_id: invoice for invoice in db.session.scalars(select(Invoice))}
    sepa = invoice_of[sepa_user.account.id].snapshot["payment"]
    assert sepa == {
        "method": "sepa_debit",
        "mandate_reference": "NXDSYREGC9PSMKWY",
        "terms_days": app.config["INVOICE_PAYMENT_TERMS_DAYS"],
        "reference": printed_reference(invoice_of[sepa_user.account.id].payment_reference),
    }
    assert invoice_of[card_user.account.id].snapshot["payment"]["method"] == "card"
    assert invoice_of[card_user.account.id].snapshot["payment"]["mandate_reference"] is None
    root = etree.fromstring(render_ubl(invoice_of[sepa_user.account.id].snapshot))
    assert root.findtext("cac:PaymentMeans/cbc:PaymentMeansCode", namespaces=UBL) == "59"
    assert root.findtext("cac:PaymentMeans/cac:PaymentMandate/cbc:ID", namespaces=UBL) == "NXDSYREGC9PSMKWY"


def test_billable_charge_rows_have_the_selected_columns_names_and_order():
    selected = select(*composition._CHARGE_COLUMNS).selected_columns.keys()
    assert tuple(selected) == composition.BillableCharge._fields
