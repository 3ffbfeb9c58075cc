"""Benchmark: the monthly invoice run up to finalization (no PDFs) on PostgreSQL.

Generates N accounts (pay as you go or Comfort) with M rated sessions in October 2026, then times
preview → approve → finalize, once with one process (Celery eager) and once with two worker processes sharing
the run items (what two Celery workers do). Target (issue 6): 100,000 accounts with 1,000,000 CDRs in under
5 minutes on this 2-core machine. Writes bench/results.json key "billing_run".

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_emsp \\
        .venv/bin/python bench/bench_billing_run.py --accounts 5000 --sessions-per-account 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results.json"

from sqlalchemy import insert, select, text

from app import create_app
from app.audit.services import Actor
from app.billing import runs
from app.billing.models import InvoiceRun
from app.extensions import db

OCT = dt.datetime(2026, 10, 1, 8, tzinfo=dt.UTC)


def _reset(app) -> None:  # type: ignore[no-untyped-def]
    from flask_migrate import upgrade

    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        upgrade()


def _generate(app, accounts: int, per_account: int) -> None:  # type: ignore[no-untyped-def]
    from app.accounts.models import Account, User
    from app.plans.models import Plan, Subscription
    from app.plans.services import seed_default_plans
    from app.rating.models import SessionCharge
    from app.roaming.models import Cdr

    with app.app_context():
        seed_default_plans()
        db.session.commit()
        plans = {plan.code: plan.id for plan in db.session.scalars(select(Plan))}
        now = dt.datetime.now(dt.UTC)
        batch = 2000
        for start in range(0, accounts, batch):
            ids = range(start + 1, min(start + batch, accounts) + 1)
            db.session.execute(insert(Account), [
                {"id": i, "full_name": f"Driver {i}", "street": "Meir 1", "postal_code": "2000", "city": "Antwerpen",
                 "country": "BE", "language": ("nl", "fr", "en")[i % 3], "created_at": now, "updated_at": now}
                for i in ids])
            db.session.execute(insert(User), [
                {"id": i, "email": f"driver{i}@bench.example", "password_hash": "!", "role": "driver",
                 "active": True, "account_id": i, "session_version": 1, "created_at": now, "updated_at": now}
                for i in ids])
            db.session.execute(insert(Subscription), [
                {"account_id": i, "plan_id": plans["comfort" if i % 4 == 0 else "payg"],
                 "starts_at": dt.datetime(2026, 9, 1, tzinfo=dt.UTC), "created_by": "bench"} for i in ids])
            cdrs, charges = [], []
            for i in ids:
                for n in range(per_account):
                    cdr_id = (i - 1) * per_account + n + 1
                    begin = OCT + dt.timedelta(days=n % 28, hours=i % 10)
                    kwh = Decimal(5 + (cdr_id % 40))
                    cdrs.append({"id": cdr_id, "country_code": "NL", "party_id": "TCP", "ocpi_id": f"C{cdr_id}",
                                 "account_id": i, "token_uid": "X", "start_date_time": begin,
                                 "end_date_time": begin + dt.timedelta(hours=1), "location_ocpi_id": "L1",
                                 "evse_uid": "E1", "country": "BEL", "currency": "EUR", "total_energy": kwh,
                                 "total_time": Decimal(1), "total_cost_excl_vat": kwh * Decimal("0.3"),
                                 "credit": False, "data": {"cdr_location": {"name": "Gent Zuid", "city": "Gent"}},
                                 "last_updated": begin, "received_at": begin})
                    cpo = kwh * Decimal("0.3")
                    fees = kwh * Decimal("0.05") + Decimal("0.35")
                    charges.append({"cdr_id": cdr_id, "account_id": i, "plan_id": plans["payg"],
                                    "tariff_source": "cdr_total_cost", "country": "BE", "currency": "EUR",
                                    "kwh": kwh, "cpo_cost_excl_vat": cpo, "markup_percent_amount": Decimal(0),
                                    "markup_per_kwh_amount": kwh * Decimal("0.05"), "session_fee": Decimal("0.35"),
                                    "driver_excl_vat": cpo + fees, "vat_rate": Decimal(21),
                                    "vat_amount": (cpo + fees) * Decimal("0.21"),
                                    "driver_incl_vat": (cpo + fees) * Decimal("1.21"), "margin": fees,
                                    "breakdown": {}, "priced_at": begin})
            db.session.execute(insert(Cdr), cdrs)
            db.session.execute(insert(SessionCharge), charges)
            db.session.commit()
        for table in ("accounts", "users", "roaming_cdrs"):
            db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                                    f"(SELECT max(id) FROM {table}))"))
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def _worker(item_ids: list[int]) -> None:
    app = create_app()
    with app.app_context():
        runs.process_items(item_ids)


def _finalize(app, workers: int) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    with app.app_context():
        run = runs.preview("2026-10", Actor.system("bench"))
        runs.approve(run, Actor.system("bench"))
        runs.start_finalizing(run, Actor.system("bench"))
        db.session.commit()
        run_id = run.id
        chunks = runs.pending_chunks(run, size=500)
    if workers == 1:
        with app.app_context():
            for chunk in chunks:
                runs.process_items(chunk)
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            pool.map(_worker, chunks)
    with app.app_context():
        runs.complete_if_done(run_id)
        assert db.session.get(InvoiceRun, run_id).status.value == "finalized"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--sessions-per-account", type=int, default=10)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgresql"):
        raise SystemExit("set DATABASE_URL to a scratch PostgreSQL database (make bench does)")
    app = create_app()
    figures: dict[str, object] = {"accounts": args.accounts, "cdrs": args.accounts * args.sessions_per_account,
                                  "target_s_for_100k_accounts_1m_cdrs": 300}
    for workers in (1, 2):
        _reset(app)
        generated = time.perf_counter()
        _generate(app, args.accounts, args.sessions_per_account)
        figures["generate_s"] = round(time.perf_counter() - generated, 1)
        seconds = _finalize(app, workers)
        figures[f"run_s_{workers}_process"] = round(seconds, 1)
        figures[f"accounts_per_s_{workers}_process"] = round(args.accounts / seconds, 1)
        print(f"{workers} process(es): {seconds:.1f} s for {args.accounts} accounts", flush=True)
    figures["extrapolated_s_for_100k_2_processes"] = round(100_000 / figures["accounts_per_s_2_process"], 0)
    figures["measured_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["billing_run"] = figures
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
