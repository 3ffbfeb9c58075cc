"""Shared set-up for the OCPI benchmarks (authorize, CDR ingest, token list): a PostgreSQL database of our own
with 1,000,000 tokens, a registered partner, gunicorn on a loopback port, and results.json read-modify-write.

Never the ``test`` database: ``BENCH_DATABASE_URL`` (default ``.../bench_r3``) is created when missing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from scratch_database import ensure_database as create_if_missing

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_r3")
PARTNER_TOKEN = "bench-partner-token"  # noqa: S105 (a loopback benchmark partner)
N_TOKENS = int(os.environ.get("BENCH_TOKENS", "1000000"))
CARDS_PER_ACCOUNT = 100
BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def libpq_url(url: str = DATABASE_URL) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def auth_header() -> str:
    return "Token " + base64.b64encode(PARTNER_TOKEN.encode()).decode()


def uid_of(n: int) -> str:
    return f"B{n:09X}"


def ensure_database() -> None:
    create_if_missing(DATABASE_URL)
    env = {**os.environ, "DATABASE_URL": DATABASE_URL, "APP_ENV": "development"}
    subprocess.run(
        [str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def seed_tokens(n_tokens: int = N_TOKENS) -> float:
    """1,000,000 cards in 10,000 accounts by COPY (97 % active, 2 % lost, 1 % blocked for payment), plus the
    bench partner. Idempotent: skipped when the cards are there. Returns the seconds spent."""
    started = time.perf_counter()
    with psycopg.connect(libpq_url()) as conn:
        if conn.execute("select count(*) from cards").fetchone()[0] >= n_tokens:
            _ensure_partner(conn)
            _prewarm(conn)
            return 0.0
        conn.execute(
            "truncate roaming_authorizations, roaming_token_deliveries, token_updates, roaming_cdrs, "
            "cards, accounts restart identity cascade"
        )
        now = dt.datetime.now(dt.UTC)
        n_accounts = (n_tokens + CARDS_PER_ACCOUNT - 1) // CARDS_PER_ACCOUNT
        with conn.cursor().copy(
            "COPY accounts (full_name, street, postal_code, city, country, language, created_at, updated_at) FROM STDIN"
        ) as copy:
            for n in range(n_accounts):
                copy.write_row((f"Driver {n}", "Meir 10", "2000", "Antwerpen", "BE", "nl", now, now))
        with conn.cursor().copy(
            "COPY cards (account_id, token_type, status, uid, contract_id, visual_number, "
            "issuer, whitelist, block_reason, ordered_at, last_updated) FROM STDIN"
        ) as copy:
            for n in range(n_tokens):
                status, reason = "active", None
                if n % 100 in (1, 2):
                    status, reason = "blocked", "lost"
                elif n % 100 == 3:
                    status, reason = "blocked", "payment"
                copy.write_row(
                    (
                        n // CARDS_PER_ACCOUNT + 1,
                        "RFID",
                        status,
                        uid_of(n),
                        f"BEVLTC{n:08d}",
                        f"VLT-{n:09d}",
                        "Voltaro BV",
                        "ALLOWED",
                        reason,
                        now,
                        BASE_TIME + dt.timedelta(seconds=n),
                    )
                )
        _ensure_partner(conn)
        conn.commit()
    with psycopg.connect(libpq_url(), autocommit=True) as conn:
        conn.execute("vacuum analyze accounts")
        conn.execute("vacuum analyze cards")
        _prewarm(conn)
    return time.perf_counter() - started


def _prewarm(conn: psycopg.Connection) -> None:
    """Load the card table and its uid indexes into PostgreSQL's buffers, as they are on a database that has
    been serving for a while (a million cards take ~330 MB). Without this the first minutes of a run measure
    the disk of this virtual machine, one random page per token."""
    conn.execute("create extension if not exists pg_prewarm")
    # The uid indexes into shared buffers; the tables into the OS cache (shared_buffers is 128 MB here).
    for relation, mode in (
        ("ix_cards_uid", "buffer"),
        ("uq_cards_uid_token_type", "buffer"),
        ("cards", "read"),
        ("accounts", "read"),
    ):
        conn.execute("select pg_prewarm(%s, %s)", (relation, mode))
    conn.commit()


def _ensure_partner(conn: psycopg.Connection) -> None:
    import hashlib

    token_hash = hashlib.sha256(PARTNER_TOKEN.encode()).hexdigest()
    if conn.execute("select 1 from roaming_partners where incoming_token_hash = %s", (token_hash,)).fetchone():
        return
    conn.execute(
        "insert into roaming_partners (name, is_hub, country_code, party_id, status, incoming_token_hash, "
        "send_base64_tokens, version, endpoints, created_at, registered_at) "
        "values ('Bench CPO', false, 'NL', 'BCH', 'registered', %s, true, '2.2.1', '[]', now(), now())",
        (token_hash,),
    )
    conn.execute(
        "insert into roaming_partner_parties (partner_id, country_code, party_id, role, status, "
        "last_updated) select id, 'BE', 'BEC', 'CPO', 'CONNECTED', now() from roaming_partners "
        "where party_id = 'BCH'"
    )
    conn.commit()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SERVER_DESCRIPTION = "gunicorn as configured in gunicorn.conf.py (gthread), 2 workers x 4 threads, keep-alive, loopback"


class Gunicorn:
    """gunicorn serving wsgi:app on a loopback port with the project's gunicorn.conf.py (gthread workers with
    keep-alive, as in production), 2 workers for this 2-core machine."""

    def __init__(self, workers: int = 2, extra: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        environment = {
            **os.environ,
            "DATABASE_URL": DATABASE_URL,
            "APP_ENV": "development",
            "SERVER_NAME": "",
            "OCPI_BASE_URL": f"http://127.0.0.1:{self.port}",
            **(env or {}),
        }
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/gunicorn"),
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                *(extra or []),
                "wsgi:app",
            ],
            cwd=ROOT,
            env=environment,
        )
        self.base_url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise SystemExit("gunicorn did not start")
        time.sleep(1.0)  # let both workers import the app

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def write_result(key: str, result: dict[str, Any]) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[key] = {
        **result,
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": sys.version.split()[0],
        "database": "PostgreSQL (local)",
        # Shared 2-core machine: other jobs running at the same time distort latency badly.
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
