"""``flask demo generate``: the generated data is what the real paths would have stored (CDRs stored again through
roaming's intake give the same rows, locations and tariffs pass the importer's validation, tokens are our eMAIDs),
priced as the engine prices it, rated and invoiced once each; the same seed gives the same data; a database with
real accounts is refused and left as it was."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

from sqlalchemy import delete, func, select

from app.accounts.models import Account, Role, User
from app.billing.models import Invoice, InvoiceLine, SessionHold
from app.cards.emaid import parse_emaid
from app.cards.models import Card, CardStatus, StockCard
from app.cards.tokens import token_object
from app.charging.models import Cdr, ChargingSession
from app.demo.generate import GenerateOptions, generate
from app.demo.generate_catalogue import TARIFF_KINDS
from app.extensions import db
from app.ocpi_values import load_json
from app.plans.models import Subscription
from app.pricing import compile_tariff, parse_cdr, parse_tariff, price_session
from app.rating.models import ReconciliationFinding, SessionCharge
from app.roaming.models import Connector, Evse, Location, Partner, PartnerParty, TariffVersion
from app.roaming.receive.cdrs import store_cdr
from app.roaming.receive.location_validation import validate_location
from app.roaming.receive.tariffs import validate_tariff
from tests.bench_runs import run_small
from tests.factories import make_user

OCTOBER = dt.datetime(2026, 9, 30, 22, tzinfo=dt.UTC)  # 1 October, 00:00 in Brussels (billing time zone)
SMALL = ["--accounts", "40", "--cards-per-account", "1.6", "--cdrs", "240", "--locations", "25"]
GENERATED_TABLES = (
    Partner,
    PartnerParty,
    TariffVersion,
    Location,
    Evse,
    Connector,
    Account,
    User,
    Subscription,
    StockCard,
    Card,
    ChargingSession,
    Cdr,
)


def _generate(app, *extra: str, seed: int = 3):  # type: ignore[no-untyped-def]
    args = ["demo", "generate", *SMALL, "--month", "2026-10", "--months", "2", "--seed", str(seed), *extra]
    return app.test_cli_runner().invoke(args=args)


def _counts() -> dict[str, int]:
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model)) for model in GENERATED_TABLES
    }


def _digest() -> str:
    """Every column of every row the generator writes, in id order."""
    digest = hashlib.sha256()
    for model in GENERATED_TABLES:
        table = model.__table__
        for row in db.session.execute(select(table).order_by(table.c.id)):
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def _ocpi(data: dict) -> dict:  # type: ignore[type-arg]
    """The stored object as it arrives over the wire: JSON text read by the house's strict reader (Decimals)."""
    return load_json(json.dumps(data))  # type: ignore[no-any-return]


# --- what is generated --------------------------------------------------------------------------------------


def test_generated_month_is_rated_and_invoiced_once(app, db_session):
    generated = _generate(app, "--months", "1")  # October, with late CDRs of September sessions
    assert generated.exit_code == 0, generated.output
    assert "roaming_cdrs" in generated.output and "very long" in generated.output
    cli = app.test_cli_runner()
    rated = cli.invoke(args=["rating", "rate-pending"])
    assert rated.exit_code == 0, rated.output
    assert "rated 240 CDRs; could not rate 0" in rated.output
    # Every CDR priced from its session's frozen tariff, to the CPO's own total: no reconciliation finding.
    assert set(db.session.scalars(select(SessionCharge.tariff_source))) == {"frozen_tariff"}
    assert db.session.scalar(select(func.count(ReconciliationFinding.id))) == 0
    assert cli.invoke(args=["billing", "run", "--period", "2026-10", "--dry-run"]).exit_code == 0
    assert cli.invoke(args=["billing", "approve", "--period", "2026-10"]).exit_code == 0
    final = cli.invoke(args=["billing", "run", "--period", "2026-10", "--no-deliver"])
    assert final.exit_code == 0, final.output
    charges = set(db.session.scalars(select(SessionCharge.id)))
    invoiced = list(
        db.session.scalars(select(InvoiceLine.session_charge_id).where(InvoiceLine.session_charge_id.is_not(None)))
    )
    held = set(db.session.scalars(select(SessionHold.session_charge_id)))
    assert len(invoiced) == len(set(invoiced))  # no session on two lines
    assert set(invoiced) | held == charges and not set(invoiced) & held
    # Held: exactly the outliers beyond the guard's limits (very large kWh, very long); zero kWh is billed.
    held_cdrs = db.session.scalars(
        select(Cdr).join(SessionCharge, SessionCharge.cdr_id == Cdr.id).where(SessionCharge.id.in_(held))
    ).all()
    assert held_cdrs and all(cdr.total_energy > 150 or cdr.total_time > 48 for cdr in held_cdrs)
    assert {cdr.start_date_time.month for cdr in held_cdrs} <= {9, 10}
    assert db.session.scalar(select(func.count(Cdr.id)).where(Cdr.total_energy == 0)) >= 1
    # Late CDRs: September sessions received in October, on the October invoice.
    assert db.session.scalar(
        select(func.count(Cdr.id)).where(Cdr.start_date_time < OCTOBER, Cdr.received_at >= OCTOBER)
    ) == db.session.scalar(select(func.count(Cdr.id)).where(Cdr.start_date_time < OCTOBER))
    late = db.session.scalars(
        select(InvoiceLine)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .join(SessionCharge, SessionCharge.id == InvoiceLine.session_charge_id)
        .join(Cdr, Cdr.id == SessionCharge.cdr_id)
        .where(Invoice.period == "2026-10", Cdr.start_date_time < OCTOBER)
    ).all()
    assert late


def test_cdrs_are_what_roaming_would_store_and_priced_as_the_engine_prices(app, db_session):
    assert _generate(app).exit_code == 0
    cdrs = db.session.scalars(select(Cdr).order_by(Cdr.id)).all()
    tariffs = {version.id: version for version in db.session.scalars(select(TariffVersion))}
    frozen = dict(db.session.execute(select(ChargingSession.ocpi_id, ChargingSession.frozen_tariff_id)).all())
    checked = ("card_id", "account_id", "token_uid", "start_date_time", "end_date_time", "total_energy", "total_time")
    generated = [
        ({name: getattr(cdr, name) for name in (*checked, "total_cost_excl_vat", "total_cost_incl_vat")}, cdr.data)
        for cdr in cdrs
    ]
    for cdr in cdrs:
        tariff = tariffs[frozen[cdr.session_ocpi_id]]
        breakdown = price_session(compile_tariff(parse_tariff(tariff.data)), parse_cdr(cdr.data), "Europe/Brussels")
        assert breakdown.total_excl_vat == cdr.total_cost_excl_vat, cdr.ocpi_id
        if breakdown.vat_unknown:  # a tariff without VAT (as most NDW ones): the CDR states no incl. VAT either
            assert cdr.total_cost_incl_vat is None
        else:
            assert breakdown.total_incl_vat == cdr.total_cost_incl_vat, cdr.ocpi_id
    partners = {partner.id: partner for partner in db.session.scalars(select(Partner))}
    partner_of = {cdr.ocpi_id: cdr.partner_id for cdr in cdrs}
    db.session.execute(delete(Cdr))
    for columns, data in generated:
        stored, created = store_cdr(partners[partner_of[data["id"]]], _ocpi(data))
        assert created
        assert {name: getattr(stored, name) for name in columns} == columns, data["id"]


def test_network_and_tokens_pass_the_real_checks(app, db_session):
    assert _generate(app).exit_code == 0
    for location in db.session.scalars(select(Location)):
        evses = [
            {**evse.data, "connectors": [connector.data for connector in evse.connectors]} for evse in location.evses
        ]
        record = validate_location(_ocpi({**location.data, "evses": evses}))
        assert (record.ocpi_id, record.latitude, record.city) == (location.ocpi_id, location.latitude, location.city)
        for evse in location.evses:
            for connector in evse.connectors:
                assert connector.tariff_ids and all(
                    db.session.scalar(select(TariffVersion.id).where(TariffVersion.ocpi_id == tariff_id))
                    for tariff_id in connector.tariff_ids
                )
    for version in db.session.scalars(select(TariffVersion)):
        validate_tariff(_ocpi(version.data))
    kinds = {
        version.ocpi_id.split("-", 1)[1].lower().replace("-", "_")
        for version in db.session.scalars(select(TariffVersion))
    }
    assert kinds == set(TARIFF_KINDS)
    hub = db.session.scalar(select(Partner).where(Partner.is_hub))
    assert hub is not None and len([party for party in hub.parties if party.role == "CPO"]) == 3
    statuses = set()
    for card in db.session.scalars(select(Card)):
        statuses.add(card.status)
        if card.status == CardStatus.ORDERED:
            assert card.uid is None and card.contract_id is None
            continue
        emaid = parse_emaid(card.contract_id or "")
        assert (emaid.country, emaid.provider, str(emaid)) == ("BE", app.config["COMPANY_PARTY_ID"], card.contract_id)
        assert card.uid == (card.uid or "").upper()
        token = token_object(card)
        assert token["valid"] == (card.status == CardStatus.ACTIVE) and token["uid"] == card.uid
    assert {CardStatus.ACTIVE, CardStatus.BLOCKED, CardStatus.EXPIRED, CardStatus.ORDERED} <= statuses
    # Every CDR's token is an active card of the CDR's account.
    mismatched = db.session.scalar(
        select(func.count(Cdr.id))
        .join(Card, Card.id == Cdr.card_id)
        .where((Card.account_id != Cdr.account_id) | (Card.uid != Cdr.token_uid) | (Card.status != CardStatus.ACTIVE))
    )
    assert mismatched == 0


# --- deterministic ------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_data(app, db_session):
    digests = []
    for seed in (3, 3, 4):
        nested = db.session.begin_nested()
        options = GenerateOptions(accounts=40, cdrs=240, locations=25, month="2026-10", months=2, seed=seed)
        generate(options, dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
        digests.append(_digest())
        nested.rollback()
    assert digests[0] == digests[1]
    assert digests[2] != digests[0]


# --- refusals -----------------------------------------------------------------------------------------------


def test_a_database_with_real_accounts_is_refused_and_left_as_it_was(app, db_session):
    make_user(email="jan.peeters@telenet.be")
    db.session.commit()
    before = _counts()
    refused = _generate(app)
    assert refused.exit_code == 3
    assert "refused" in refused.output and "real accounts" in refused.output
    assert _counts() == before


def test_demo_seed_accounts_are_not_real_but_a_second_generation_is_refused(app, db_session):
    make_user(email="driver@example.com")  # what flask demo seed makes
    db.session.commit()
    assert _generate(app).exit_code == 0
    before = _counts()
    again = _generate(app, seed=9)
    assert again.exit_code == 3 and "already holds generated data" in again.output
    assert _counts() == before


def test_an_account_without_any_login_counts_as_real(app, db_session):
    user = make_user(email="anonymised@example.com")
    user.account_id = None
    user.role = Role.SUPPORT  # the account keeps no login of its own
    db.session.commit()
    assert _generate(app).exit_code == 3


def test_bad_options_change_nothing(app, db_session):
    before = _counts()
    for extra in (["--month", "2026-13"], ["--month", "2999-01"], ["--cards-per-account", "0.5"]):
        result = app.test_cli_runner().invoke(args=["demo", "generate", *SMALL, *extra])
        assert result.exit_code == 2, result.output
    assert _counts() == before


def test_the_benchmark_runs_small(tmp_path):
    sqlite = f"sqlite:///{tmp_path / 'bench.sqlite3'}"
    figures = run_small("bench_demo_generate.py", tmp_path, "--size", "small", "--database", sqlite, "--runs", "1")
    entry = figures["demo_generate"]["small"]
    assert entry["tables"]["roaming_cdrs"]["rows"] == 1000 and entry["tables"]["accounts"]["rows"] == 200
    assert entry["tables"]["roaming_cdrs"]["rows_per_s"] > 0 and entry["total_s"] > 0 and entry["process_cpu_s"] > 0
    # SQLite: no server process to measure, no indexes deferred (PostgreSQL only); the figures per 100,000 CDRs
    assert entry["server_cpu_s"] is None and entry["indexes_deferred"] is False
    assert entry["per_100k_cdrs"]["wall_s"] > entry["total_s"] and entry["per_100k_cdrs"]["server_cpu_s"] is None
    baseline = entry["baseline_sessions_and_cdrs"]
    assert baseline["rows"] == 400 and baseline["ratio_orm_vs_bulk"] > 0
    assert Decimal(entry["data_size"]["cards_per_account"]) == Decimal("1.5")
