"""Rating CDRs: the tariff source order (price promise), our fees, VAT, the session-fee cap, credits, and the
reconciliation with the CPO's figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.audit.services import Actor
from app.charging.models import Cdr, ChargingSession
from app.extensions import db
from app.plans import services as plan_services
from app.rating import pending, services
from app.rating.models import ReconciliationFinding
from app.roaming.models import TariffVersion
from tests.factories import make_user

START = dt.datetime(2026, 10, 14, 18, 0, tzinfo=dt.UTC)

TARIFF = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "T1",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1},
                {"type": "FLAT", "price": 0.50, "vat": 21.0, "step_size": 1},
            ]
        }
    ],
    "last_updated": "2026-09-01T00:00:00Z",
}


def _cdr(
    account_id: int,
    card_id: int,
    *,
    ocpi_id: str = "CDR1",
    kwh: str = "20",
    cpo_total: str = "6.50",
    session_id: str | None = None,
    tariffs: list | None = None,
    start: dt.datetime = START,
    country: str = "BEL",
    credit: bool = False,
    original: Cdr | None = None,
) -> Cdr:
    end = start + dt.timedelta(hours=1)
    data = {
        "country_code": "NL",
        "party_id": "TCP",
        "id": ocpi_id,
        "start_date_time": start.isoformat(),
        "end_date_time": end.isoformat(),
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": start.isoformat(),
                "dimensions": [{"type": "ENERGY", "volume": float(kwh)}, {"type": "TIME", "volume": 1}],
            }
        ],
        "total_cost": {"excl_vat": float(cpo_total)},
        "total_energy": float(kwh),
        "total_time": 1,
        "cdr_location": {"id": "LOC1", "country": country},
    }
    if tariffs is not None:
        data["tariffs"] = tariffs
    cdr = Cdr(
        country_code="NL",
        party_id="TCP",
        ocpi_id=ocpi_id,
        session_ocpi_id=session_id,
        card_id=card_id,
        account_id=account_id,
        token_uid="04000001",
        start_date_time=start,
        end_date_time=end,
        location_ocpi_id="LOC1",
        evse_uid="E1",
        country=country,
        currency="EUR",
        total_energy=Decimal(kwh),
        total_time=Decimal(1),
        total_cost_excl_vat=Decimal(cpo_total),
        total_cost_incl_vat=None,
        credit=credit,
        credit_reference_id=original.ocpi_id if original else None,
        original_cdr_id=original.id if original else None,
        data=data,
        last_updated=end,
    )
    db.session.add(cdr)
    db.session.flush()
    return cdr


def _frozen_session(account_id: int, card_id: int, tariff: dict, session_id: str = "S1") -> ChargingSession:
    version = TariffVersion(
        country_code="NL",
        party_id="TCP",
        ocpi_id=tariff["id"],
        currency="EUR",
        data=tariff,
        last_updated=dt.datetime(2026, 9, 1, tzinfo=dt.UTC),
    )
    db.session.add(version)
    db.session.flush()
    session = ChargingSession(
        country_code="NL",
        party_id="TCP",
        ocpi_id=session_id,
        card_id=card_id,
        account_id=account_id,
        status="COMPLETED",
        start_date_time=START,
        kwh=Decimal(20),
        location_ocpi_id="LOC1",
        evse_uid="E1",
        connector_id="1",
        currency="EUR",
        frozen_tariff_id=version.id,
        data={},
        last_updated=START,
    )
    db.session.add(session)
    db.session.flush()
    return session


def test_pay_as_you_go_price_from_the_frozen_tariff(driver):
    account, card = driver
    _frozen_session(account.id, card.id, TARIFF)
    charge = services.rate_cdr(_cdr(account.id, card.id, session_id="S1"))
    # CPO: 20 kWh × 0.30 + 0.50 start = 6.50. Ours (pay as you go): 20 × 0.05 + 0.35 session fee = 1.35.
    assert charge.tariff_source == "frozen_tariff"
    assert charge.cpo_cost_excl_vat == Decimal("6.5000")
    assert charge.markup_per_kwh_amount == Decimal("1.0000") and charge.session_fee == Decimal("0.3500")
    assert charge.driver_excl_vat == Decimal("7.8500") and charge.margin == Decimal("1.3500")
    assert charge.vat_rate == Decimal("21") and charge.vat_amount == Decimal("1.6485")
    assert charge.driver_incl_vat == Decimal("9.4985")
    assert db.session.query(ReconciliationFinding).count() == 0
    # Rating twice changes nothing.
    assert services.rate_cdr(db.session.get(Cdr, charge.cdr_id)).id == charge.id


def test_frozen_tariff_wins_over_what_the_cpo_sends_later(driver):
    account, card = driver
    _frozen_session(account.id, card.id, TARIFF)
    expensive = {**TARIFF, "elements": [{"price_components": [{"type": "ENERGY", "price": 0.80, "step_size": 1}]}]}
    cdr = _cdr(account.id, card.id, session_id="S1", tariffs=[expensive], cpo_total="16.00")
    charge = services.rate_cdr(cdr)
    assert charge.cpo_cost_excl_vat == Decimal("6.5000")
    finding = db.session.query(ReconciliationFinding).one()
    assert finding.difference == Decimal("9.5000") and finding.month == "2026-10"
    assert Decimal(str(finding.cpo_breakdown["total_cost"]["excl_vat"])) == Decimal("16")


def test_cdr_tariffs_then_total_cost_when_we_hold_no_tariff(driver):
    account, card = driver
    with_tariff = services.rate_cdr(_cdr(account.id, card.id, ocpi_id="A", tariffs=[TARIFF]))
    assert with_tariff.tariff_source == "cdr_tariffs" and with_tariff.cpo_cost_excl_vat == Decimal("6.5000")
    bare = services.rate_cdr(
        _cdr(account.id, card.id, ocpi_id="B", cpo_total="7.12", start=START + dt.timedelta(days=1))
    )
    assert bare.tariff_source == "cdr_total_cost" and bare.cpo_cost_excl_vat == Decimal("7.1200")
    assert db.session.query(ReconciliationFinding).count() == 0  # nothing to compare with


def test_session_fee_cap_per_month(driver):
    account, card = driver
    capped = plan_services.create_plan(
        "capped",
        {"en": "Capped"},
        {
            "monthly_fee": Decimal(0),
            "markup_percent": Decimal(10),
            "markup_per_kwh": Decimal(0),
            "session_fee": Decimal("0.35"),
            "session_fee_cap_per_month": Decimal("0.50"),
            "currency": "EUR",
        },
        Actor.system("test"),
    )
    for stretch in plan_services.history(account.id):
        db.session.delete(stretch)
    db.session.flush()
    plan_services.subscribe(account, capped, Actor.system("test"), at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    fees = [
        services.rate_cdr(
            _cdr(account.id, card.id, ocpi_id=f"C{i}", tariffs=[TARIFF], start=START + dt.timedelta(hours=2 * i))
        ).session_fee
        for i in range(3)
    ]
    assert fees == [Decimal("0.3500"), Decimal("0.1500"), Decimal("0.0000")]
    # 10 % markup on the CPO cost
    charge = services.rate_cdr(
        _cdr(account.id, card.id, ocpi_id="C9", tariffs=[TARIFF], start=START + dt.timedelta(days=20))
    )
    assert charge.markup_percent_amount == Decimal("0.6500")
    # A new month starts a new cap (November, Brussels time).
    november = services.rate_cdr(
        _cdr(
            account.id, card.id, ocpi_id="N1", tariffs=[TARIFF], start=dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.UTC)
        )
    )
    assert november.session_fee == Decimal("0.3500")


def test_credit_cdr_reverses_the_original(driver):
    account, card = driver
    original = _cdr(account.id, card.id, ocpi_id="O1", tariffs=[TARIFF])
    charge = services.rate_cdr(original)
    credit = services.rate_cdr(
        _cdr(account.id, card.id, ocpi_id="O1-CREDIT", tariffs=[TARIFF], credit=True, original=original)
    )
    assert credit.driver_incl_vat == -charge.driver_incl_vat and credit.margin == -charge.margin


def test_problems_are_reported_not_guessed(driver):
    account, card = driver
    with pytest.raises(services.RatingError, match=r"VAT|US"):
        services.rate_cdr(_cdr(account.id, card.id, ocpi_id="US1", country="USA", tariffs=[TARIFF]))
    early = _cdr(account.id, card.id, ocpi_id="E1", tariffs=[TARIFF], start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(services.RatingError, match="no plan"):
        services.rate_cdr(early)
    rated, problems = pending.rate_pending()
    assert rated == 0 and len(problems) == 2


def test_reconciliation_report_and_csv(client, driver):
    from app.accounts.models import Role
    from tests.factories import login

    account, card = driver
    _frozen_session(account.id, card.id, TARIFF)
    services.rate_cdr(_cdr(account.id, card.id, session_id="S1", cpo_total="7.00"))
    login(client, make_user(Role.FINANCE))
    page = client.get("/backoffice/finance/reconciliation?month=2026-10").get_data(as_text=True)
    assert "NL*TCP" in page and "€0.50" in page
    detail = client.get("/backoffice/finance/reconciliation?month=2026-10&country_code=NL&party_id=TCP")
    assert "CDR1" in detail.get_data(as_text=True)
    csv_text = client.get("/backoffice/finance/reconciliation.csv?month=2026-10").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("month,country_code,party_id,cdr_id")
    assert "2026-10,NL,TCP,CDR1" in csv_text and ",0.5000," in csv_text
    assert client.get("/backoffice/finance/reconciliation?month=october").status_code == 400


def test_periodic_task_rates_what_arrival_did_not(driver):
    from app.extensions import celery
    from app.rating.tasks import rate_pending_task

    account, card = driver
    missed = _cdr(account.id, card.id, ocpi_id="MISSED1", tariffs=[TARIFF])  # stored, its task never ran
    assert rate_pending_task.delay().get() == {"rated": 1, "not_rated": 0}
    assert pending.rate_pending() == (0, [])
    assert missed.id is not None
    assert celery.conf.beat_schedule["rating.rate_pending"]["schedule"] == 300.0


def test_a_batch_rates_each_cdr_on_its_own(driver):
    from app.rating.tasks import rate_cdrs_task

    account, card = driver
    good = _cdr(account.id, card.id, ocpi_id="B1", tariffs=[TARIFF])
    foreign = _cdr(account.id, card.id, ocpi_id="B2", country="USA", tariffs=[TARIFF])  # no VAT rule: not rated
    assert rate_cdrs_task.delay([good.id, foreign.id, 999_999]).get() == {"rated": 1, "not rated": 1, "skipped": 1}
