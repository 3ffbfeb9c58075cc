"""The driver's app API under load: ``GET /api/v1/sessions/active`` and ``GET /api/v1/cards`` at 300 requests/s.

gunicorn (``gunicorn.conf.py``, 2 workers) serves the app on loopback against a database of 100,000 driver
accounts, each with a signed-in device (its bearer token), two cards and a plan; 1 % of them are charging now (a
session under way with a frozen tariff and charging periods, so their ``/sessions/active`` prices the cost so far
with the engine that bills). A load generator in its own process sends an open-loop stream (requests scheduled at a
fixed rate whether or not earlier ones returned; each latency is measured from the *scheduled* send time, so
queueing shows), half of each path, each request as a random driver. Baseline in the same run: ``GET
/api/v1/status`` (public, no token, one ``SELECT 1``) at the same rate: what the server and framework alone cost.

In-process, the bearer check (``api_tokens.holder_of_access_token``: a SHA-256 and one indexed query) is timed
over many tokens against the password check argon2 makes at sign-in (``passwords.verify_password``), to show why
no password hash is on the hot path.

Usage: ``.venv/bin/python bench/bench_api.py [--size full|small] [--database URL] [--rate 300] [--duration 30]``
(default database ``BENCH_DATABASE_URL`` or ``.../bench_h5`` on the local PostgreSQL, created when missing; a
``sqlite:///`` URL works for the small size). Figures go to ``bench/results.json`` under ``"api"``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ocpi_bench_common import Gunicorn, percentile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
DEFAULT_DATABASE = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_h5")
SIZES = {
    "full": {"accounts": 100_000, "rate": 300.0, "duration": 30.0, "token_checks": 5_000, "argon2_checks": 10},
    "small": {"accounts": 500, "rate": 40.0, "duration": 3.0, "token_checks": 300, "argon2_checks": 3},
}
P99_TARGET_MS = 15.0
TOKEN_CHECK_TARGET_MS = 0.5
CHARGING_SHARE = 100  # one account in this many is charging now
CHUNK = 10_000
PASSWORD = "bench-password-1"  # noqa: S105  (the seeded drivers' password: only its argon2 hash is stored)
SEED_TAG = "bench-api"
# The operator's tariff and charge point of the sessions under way (as in tests/roaming/remote_fixtures.py).
TARIFF = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "AC-STD",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.39, "vat": 21.0, "step_size": 1},
                {"type": "FLAT", "price": 0.25, "vat": 21.0, "step_size": 1},
            ]
        }
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}
LOCATION = {
    "country_code": "NL",
    "party_id": "TCP",
    "id": "LOC-EST",
    "publish": True,
    "name": "Stationsplein P1",
    "address": "Stationsplein 1",
    "city": "Utrecht",
    "country": "NLD",
    "coordinates": {"latitude": "52.089444", "longitude": "5.110278"},
    "time_zone": "Europe/Amsterdam",
    "last_updated": "2026-01-01T00:00:00Z",
    "evses": [
        {
            "uid": "E1",
            "evse_id": "NL*TCP*E1",
            "status": "CHARGING",
            "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
            "last_updated": "2026-01-01T00:00:00Z",
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "SOCKET",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 230,
                    "max_amperage": 32,
                    "max_electric_power": 22000,
                    "tariff_ids": ["AC-STD"],
                    "last_updated": "2026-01-01T00:00:00Z",
                }
            ],
        }
    ],
}


def access_token(n: int) -> str:
    """The bearer token of driver ``n``'s device: 43 characters, as ``secrets.token_urlsafe(32)`` makes them."""
    return f"{n:043d}"


# --- data ------------------------------------------------------------------------------------------------------


def _app(database: str) -> Any:
    from app import create_app

    return create_app("development", SQLALCHEMY_DATABASE_URI=database, SERVER_NAME=None)


def prepare(database: str, accounts: int) -> float:
    """Schema, plans, one CPO location with its tariff, and ``accounts`` drivers bulk-inserted (``app.db_bulk``:
    COPY on PostgreSQL). Idempotent: reuses what is there; refreshes the tokens' expiry and the sessions' times
    (a session older than 48 h is not live any more). Returns the seconds spent seeding."""
    if database.startswith("postgresql"):
        from scratch_database import ensure_database

        ensure_database(database)
    env = {**os.environ, "DATABASE_URL": database, "APP_ENV": "development"}
    subprocess.run([str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True)
    app = _app(database)
    started = time.perf_counter()
    with app.app_context():
        from sqlalchemy import func, select, update

        from app.accounts.api_tokens import ApiDevice
        from app.accounts.models import User
        from app.charging.models import ChargingSession
        from app.extensions import db
        from app.plans.services import seed_default_plans

        seed_default_plans()
        db.session.commit()
        have = db.session.scalar(select(func.count()).select_from(User).where(User.email.like(f"%@{SEED_TAG}.example")))
        if have != accounts:
            _seed(accounts)
        now = dt.datetime.now(dt.UTC)
        db.session.execute(update(ApiDevice).values(access_expires_at=now + dt.timedelta(days=1)))
        db.session.execute(
            update(ChargingSession)
            .where(ChargingSession.ocpi_id.like("BENCH-%"))
            .values(start_date_time=now - dt.timedelta(minutes=20), last_updated=now - dt.timedelta(minutes=1))
        )
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                for table in ("accounts", "users", "cards", "api_devices", "subscriptions", "roaming_sessions"):
                    connection.exec_driver_sql(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


def _seed(accounts: int) -> None:
    from sqlalchemy import delete, select

    from app.accounts.api_tokens import ApiDevice
    from app.accounts.models import Account, Role, User
    from app.accounts.passwords import hash_password
    from app.cards.models import Card, CardStatus, TokenType
    from app.charging.models import ChargingSession
    from app.db_bulk import insert_returning_ids, insert_rows
    from app.extensions import db
    from app.plans.models import Plan, Subscription
    from app.roaming.models import TariffVersion
    from app.roaming.receive.locations import upsert_location
    from app.roaming.receive.tariffs import store_tariff

    print(f"seeding {accounts} accounts ...", flush=True)
    users = select(User.id).where(User.email.like(f"%@{SEED_TAG}.example"))
    account_ids = select(User.account_id).where(User.email.like(f"%@{SEED_TAG}.example"))
    db.session.execute(delete(ChargingSession).where(ChargingSession.ocpi_id.like("BENCH-%")))
    db.session.execute(delete(ApiDevice).where(ApiDevice.user_id.in_(users)))
    db.session.execute(delete(Card).where(Card.account_id.in_(account_ids)))
    db.session.execute(delete(Subscription).where(Subscription.account_id.in_(account_ids)))
    doomed = list(db.session.scalars(account_ids))
    db.session.execute(delete(User).where(User.email.like(f"%@{SEED_TAG}.example")))
    db.session.execute(delete(Account).where(Account.id.in_(doomed)))
    tariff = store_tariff(TARIFF, partner=None, country_code="NL", party_id="TCP")
    upsert_location(LOCATION, partner=None, country_code="NL", party_id="TCP")
    db.session.flush()
    tariff_id = db.session.scalar(select(TariffVersion.id).where(TariffVersion.ocpi_id == TARIFF["id"]))
    assert tariff_id is not None, tariff
    payg = db.session.scalar(select(Plan.id).where(Plan.code == "payg").order_by(Plan.version.desc()))
    password_hash = hash_password(PASSWORD)
    now = dt.datetime.now(dt.UTC)
    since = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for first in range(0, accounts, CHUNK):
        numbers = range(first, min(first + CHUNK, accounts))
        ids = insert_returning_ids(
            Account.__table__,
            [
                {
                    "full_name": f"Driver {n}",
                    "street": "Meir 10",
                    "postal_code": "2000",
                    "city": "Antwerpen",
                    "country": "BE",
                    "language": ("nl", "fr", "en")[n % 3],
                    "created_at": now,
                    "updated_at": now,
                }
                for n in numbers
            ],
        )
        user_ids = insert_returning_ids(
            User.__table__,
            [
                {
                    "email": f"driver{n}@{SEED_TAG}.example",
                    "password_hash": password_hash,
                    "role": Role.DRIVER,
                    "active": True,
                    "email_confirmed_at": now,
                    "session_version": 1,
                    "account_id": account_id,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, account_id in zip(numbers, ids, strict=True)
            ],
        )
        insert_rows(
            Subscription.__table__,
            [{"account_id": a, "plan_id": payg, "starts_at": since, "created_by": SEED_TAG} for a in ids],
        )
        insert_rows(
            ApiDevice.__table__,
            [
                {
                    "user_id": user_id,
                    "name": "Bench phone",
                    "created_at": now,
                    "last_used_at": now,
                    "access_token_hash": hashlib.sha256(access_token(n).encode()).hexdigest(),
                    "access_expires_at": now + dt.timedelta(days=1),
                    "refresh_family": f"{n:022d}",
                    "refresh_token_hash": hashlib.sha256(f"refresh-{n}".encode()).hexdigest(),
                    "refresh_expires_at": now + dt.timedelta(days=60),
                }
                for n, user_id in zip(numbers, user_ids, strict=True)
            ],
        )
        card_ids = insert_returning_ids(
            Card.__table__,
            [
                {
                    "account_id": account_id,
                    "token_type": TokenType.RFID,
                    "status": CardStatus.ACTIVE if kind == 0 else CardStatus.SHIPPED,
                    "uid": f"A{2 * n + kind:09X}",
                    "contract_id": f"BEVLTA{2 * n + kind:08d}",
                    "visual_number": f"VLA-{2 * n + kind:09d}",
                    "issuer": "Voltaro BV",
                    "label": ("Car", "Spare")[kind],
                    "ordered_at": now,
                    "activated_at": now if kind == 0 else None,
                    "last_updated": now,
                }
                for n, account_id in zip(numbers, ids, strict=True)
                for kind in (0, 1)
            ],
        )
        charging = [
            (n, account_id, card_ids[2 * index])
            for index, (n, account_id) in enumerate(zip(numbers, ids, strict=True))
            if n % CHARGING_SHARE == 0
        ]
        insert_rows(ChargingSession.__table__, [_session(n, a, c, tariff_id, now) for n, a, c in charging])
        db.session.commit()
        print(f"  {first + len(numbers)} accounts", flush=True)


def _session(n: int, account_id: int, card_id: int, tariff_id: int, now: dt.datetime) -> dict[str, Any]:
    start = now - dt.timedelta(minutes=20)
    period = {
        "start_date_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dimensions": [
            {"type": "ENERGY", "volume": 6.2},
            {"type": "TIME", "volume": 0.3},
            {"type": "POWER", "volume": 19},
        ],
    }
    return {
        "partner_id": None,
        "country_code": "NL",
        "party_id": "TCP",
        "ocpi_id": f"BENCH-{n}",
        "ocpi_id_key": f"BENCH-{n}",
        "card_id": card_id,
        "account_id": account_id,
        "status": "ACTIVE",
        "start_date_time": start,
        "kwh": Decimal("6.2"),
        "location_ocpi_id": "LOC-EST",
        "evse_uid": "E1",
        "connector_id": "1",
        "currency": "EUR",
        "frozen_tariff_id": tariff_id,
        "data": {"charging_periods": [period]},
        "last_updated": now - dt.timedelta(minutes=1),
    }


# --- the token check in-process --------------------------------------------------------------------------------


def token_check(database: str, accounts: int, checks: int, argon2_checks: int) -> dict[str, Any]:
    """Median time of the bearer check over ``checks`` random drivers (5 runs), and of argon2's password check."""
    from app.accounts import api_tokens
    from app.accounts.passwords import hash_password, verify_password
    from app.extensions import db

    app = _app(database)
    rng = random.Random(7)
    with app.app_context():
        tokens = [access_token(rng.randrange(accounts)) for _ in range(checks)]
        for token in tokens[:50]:  # warm: connection, statement cache
            assert api_tokens.holder_of_access_token(token) is not None
        runs = []
        for _run in range(5):
            timings = []
            for token in tokens:
                started = time.perf_counter()
                holder = api_tokens.holder_of_access_token(token)
                timings.append((time.perf_counter() - started) * 1000)
                assert holder is not None
            runs.append(statistics.median(timings))
            db.session.rollback()
        stored = hash_password(PASSWORD)
        argon2 = []
        for _ in range(argon2_checks):
            started = time.perf_counter()
            assert verify_password(stored, PASSWORD)
            argon2.append((time.perf_counter() - started) * 1000)
    token_ms = statistics.median(runs)
    argon2_ms = statistics.median(argon2)
    return {
        "token_check_median_ms": round(token_ms, 4),
        "token_check_run_medians_ms": [round(value, 4) for value in runs],
        "token_checks_per_run": checks,
        "argon2_verify_median_ms": round(argon2_ms, 2),
        "argon2_checks": argon2_checks,
        "ratio_argon2_vs_token_check": round(argon2_ms / token_ms, 1) if token_ms else None,
        "token_check_target_ms": TOKEN_CHECK_TARGET_MS,
        "token_check_meets_target": token_ms < TOKEN_CHECK_TARGET_MS,
    }


# --- load --------------------------------------------------------------------------------------------------------


async def _load(base_url: str, rate: float, duration: float, calls: list[tuple[str, str | None]]) -> dict[str, Any]:
    import aiohttp

    latencies: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    error_kinds: dict[str, int] = {}
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one(path: str, token: str | None, scheduled: float) -> None:
            nonlocal errors
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                async with session.get(base_url + path, headers=headers) as resp:
                    await resp.read()
                    key = f"{path.split('?')[0]} {resp.status}"
                    statuses[key] = statuses.get(key, 0) + 1
            except Exception as error:  # counted by kind: a refused or dropped connection is a result too
                errors += 1
                kind = type(error).__name__
                error_kinds[kind] = error_kinds.get(kind, 0) + 1
                return
            latencies.setdefault(path.split("?")[0], []).append((time.perf_counter() - scheduled) * 1000)

        total = int(rate * duration)
        start = time.perf_counter() + 0.2
        tasks = []
        for index in range(total):
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            path, token = calls[index % len(calls)]
            tasks.append(asyncio.create_task(one(path, token, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    every = [value for values in latencies.values() for value in values]
    return {
        "sent": total,
        "ok": len(every),
        "errors": errors,
        "error_kinds": error_kinds,
        "statuses": statuses,
        "achieved_rate": round(len(every) / elapsed, 1),
        **_percentiles(every),
        "by_path": {path: _percentiles(values) for path, values in sorted(latencies.items())},
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.50), 2),
        "p90_ms": round(percentile(values, 0.90), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(max(values, default=0), 2),
    }


def _worker(queue: multiprocessing.Queue, *args: Any) -> None:  # type: ignore[type-arg]
    queue.put(asyncio.run(_load(*args)))


def run_load(base_url: str, rate: float, duration: float, calls: list[tuple[str, str | None]]) -> dict[str, Any]:
    """The load generator runs in its own process so it shares no GIL with anything measured."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_worker, args=(queue, base_url, rate, duration, calls))
    process.start()
    result = queue.get(timeout=duration + 120)
    process.join(timeout=30)
    return result


def write_result(path: Path, entry: dict[str, Any]) -> None:
    """Read-modify-write: only the ``"api"`` key changes."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data["api"] = entry
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    size = SIZES[args.size]
    rate = args.rate or size["rate"]
    duration = args.duration or size["duration"]
    accounts = int(size["accounts"])

    seeded = prepare(args.database, accounts)
    print(f"{accounts} accounts ready ({seeded:.1f} s)", flush=True)
    checks = token_check(args.database, accounts, int(size["token_checks"]), int(size["argon2_checks"]))
    print("token check", checks, flush=True)

    rng = random.Random(42)
    calls: list[tuple[str, str | None]] = []
    for index in range(20_000):
        driver = rng.randrange(accounts)
        calls.append(("/api/v1/sessions/active" if index % 2 == 0 else "/api/v1/cards", access_token(driver)))
    env = {"RATELIMIT_STORAGE_URI": "memory://"}
    with Gunicorn(workers=2, env={**env, "DATABASE_URL": args.database}) as server:
        run_load(server.base_url, min(rate, 100), 3, calls)  # warm-up: connections, caches
        baseline = run_load(server.base_url, rate, min(duration, 20), [("/api/v1/status", None)])
        print("baseline (status, no token)", baseline, flush=True)
        target = run_load(server.base_url, rate, duration, calls)
        print(f"sessions/active + cards at {rate}/s for {duration:.0f} s", target, flush=True)

    entry = {
        "size": args.size,
        "accounts": accounts,
        "charging_accounts": (accounts + CHARGING_SHARE - 1) // CHARGING_SHARE,
        "database": "postgresql" if args.database.startswith("postgresql") else "sqlite",
        "server": "gunicorn as configured in gunicorn.conf.py (gthread), 2 workers, keep-alive, loopback",
        "rate_per_s": rate,
        "duration_s": duration,
        "mix": "half GET /api/v1/sessions/active, half GET /api/v1/cards, each as a random driver",
        **{name: target[name] for name in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "achieved_rate", "errors")},
        "requests": target["ok"],
        "statuses": target["statuses"],
        "by_path": target["by_path"],
        "target_p99_ms": P99_TARGET_MS,
        "meets_target": target["p99_ms"] < P99_TARGET_MS and not target["errors"],
        "baseline_status_p50_ms": baseline["p50_ms"],
        "baseline_status_p99_ms": baseline["p99_ms"],
        "ratio_p99_vs_status": round(target["p99_ms"] / baseline["p99_ms"], 2) if baseline["p99_ms"] else None,
        **checks,
        "latency_note": "measured from the scheduled send time (open loop), so queueing is included",
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    write_result(args.results, entry)


if __name__ == "__main__":
    main()
