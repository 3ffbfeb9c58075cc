"""Shared set-up for the OCPI benchmarks (authorize, CDR ingest, token list): a PostgreSQL database of our own
with 1,000,000 tokens, a registered partner, gunicorn on a loopback port, and results.json read-modify-write.

Never the ``test`` database: ``BENCH_DATABASE_URL`` (default ``.../bench_r3``) is created when missing.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


def write_sized_result(results: Path, key: str, size: str, entry: dict[str, Any]) -> None:
    """``entry`` as ``results[key][size]`` (read-modify-write: the other figures stay), stamped with when, how
    busy the machine was at the end and its cores."""
    figures = json.loads(results.read_text()) if results.exists() else {}
    figures.setdefault(key, {})[size] = {
        **entry,
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "machine": f"{os.cpu_count()} cores",
    }
    results.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


# --- a cheap open-loop load generator --------------------------------------------------------------------------

# One request of a load: its path, its headers, and the name its latency is reported under (default: the path
# without its query).
LoadRequest = tuple[str, dict[str, str], str | None]


class _Answer:
    __slots__ = ("error", "status")

    def __init__(self, status: int = 0, error: str | None = None) -> None:
        self.status = status
        self.error = error


class _HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time: the request is pre-encoded bytes, the answer is
    read just enough to know its status and where it ends (Content-Length, as every answer of the app has, or a
    closed connection). Cheaper per request than a general client (aiohttp spends ~0.3 ms of Python on each): on
    a 2-core machine the load generator shares the cores it measures."""

    def __init__(self, on_idle: Any) -> None:
        self.transport: asyncio.Transport | None = None
        self.on_idle = on_idle
        self.buffer = bytearray()
        self.waiter: asyncio.Future[_Answer] | None = None
        self.body_left = -1
        self.status = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, waiter: asyncio.Future[_Answer]) -> None:
        self.waiter, self.buffer, self.body_left, self.status = waiter, bytearray(), -1, 0
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.body_left < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).split(b"\r\n")
            self.status = int(head[0].split(b" ", 2)[1])
            length = next((int(line[15:]) for line in head[1:] if line[:15].lower() == b"content-length:"), None)
            if length is None and (self.status in (204, 304) or self.status < 200):
                length = 0
            if length is None:
                self._finish(_Answer(self.status, "no Content-Length"), close=True)
                return
            del self.buffer[: end + 4]
            self.body_left = length
        if len(self.buffer) >= self.body_left:
            self._finish(_Answer(self.status))

    def _finish(self, answer: _Answer, close: bool = False) -> None:
        waiter, self.waiter = self.waiter, None
        if close and self.transport is not None:
            self.transport.close()
            self.closed = True
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._finish(_Answer(0, type(exc).__name__ if exc else "ConnectionClosed"))


async def _open_loop(
    base_url: str, rate: float, duration: float, requests: list[LoadRequest], timeout: float
) -> dict[str, Any]:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    encoded = [
        (
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                + "\r\n"
            ).encode(),
            name or path.split("?")[0],
        )
        for path, headers, name in requests
    ]
    idle: list[_HttpConnection] = []
    latencies: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    error_kinds: dict[str, int] = {}
    opened = 0

    async def connection() -> _HttpConnection:
        nonlocal opened
        while idle:
            candidate = idle.pop()
            if not candidate.closed:
                return candidate
        opened += 1
        _transport, protocol = await loop.create_connection(lambda: _HttpConnection(None), host, port)
        return protocol

    async def one(request: bytes, name: str, scheduled: float) -> None:
        try:
            conn = await connection()
            waiter: asyncio.Future[_Answer] = loop.create_future()
            conn.send(request, waiter)
            answer = await asyncio.wait_for(waiter, timeout)
        except (OSError, TimeoutError) as error:
            answer = _Answer(0, type(error).__name__)
            conn = None  # type: ignore[assignment]
        done = time.perf_counter()
        if answer.error:
            error_kinds[answer.error] = error_kinds.get(answer.error, 0) + 1
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            return
        key = f"{name} {answer.status}"
        statuses[key] = statuses.get(key, 0) + 1
        latencies.setdefault(name, []).append((done - scheduled) * 1000)
        idle.append(conn)

    total = int(rate * duration)
    tasks: set[asyncio.Task[None]] = set()
    cpu_started = time.process_time()
    start = time.perf_counter() + 0.2
    index = 0
    while index < total:
        now = time.perf_counter()
        # Everything due is sent now, each timed from its own scheduled moment: a late tick shows as latency.
        while index < total and start + index / rate <= now:
            request, name = encoded[index % len(encoded)]
            task = loop.create_task(one(request, name, start + index / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
        if index < total:
            await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
    while tasks:
        await asyncio.gather(*list(tasks))
    elapsed = time.perf_counter() - start
    for conn in idle:
        if conn.transport is not None:
            conn.transport.close()
    every = [value for values in latencies.values() for value in values]
    return {
        "sent": total,
        "ok": len(every),
        "errors": sum(error_kinds.values()),
        "error_kinds": error_kinds,
        "statuses": statuses,
        "achieved_rate": round(len(every) / elapsed, 1),
        "connections_opened": opened,
        "generator_cpu_ms_per_request": round((time.process_time() - cpu_started) * 1000 / max(total, 1), 3),
        **latency_figures(every),
        "by_path": {name: latency_figures(values) for name, values in sorted(latencies.items())},
    }


def latency_figures(values: list[float], quantiles: tuple[int, ...] = (50, 90, 99)) -> dict[str, float]:
    """``p<q>_ms`` for each quantile (in percent) and ``max_ms``, rounded to 0.01 ms."""
    figures = {f"p{q}_ms": round(percentile(values, q / 100), 2) for q in quantiles}
    figures["max_ms"] = round(max(values, default=0), 2)
    return figures


def _open_loop_process(queue: Any, *args: Any) -> None:
    queue.put(asyncio.run(_open_loop(*args)))


def open_loop_load(
    base_url: str, rate: float, duration: float, requests: list[LoadRequest], timeout: float = 10.0
) -> dict[str, Any]:
    """``rate`` GET requests a second for ``duration`` seconds, cycling through ``requests``, scheduled at fixed
    times whether or not earlier ones returned (open loop); each latency is measured from its *scheduled* time, so
    queueing (in the server or in the generator) shows. Runs in a process of its own, so it shares no GIL with
    what it measures; reports the CPU it spent per request too."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_open_loop_process, args=(queue, base_url, rate, duration, requests, timeout))
    process.start()
    try:
        result: dict[str, Any] = queue.get(timeout=duration + timeout + 120)
    finally:
        process.join(timeout=30)
    return result


# --- what a server spends ---------------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc; 0 for a process gone or elsewhere)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (gunicorn's workers), Linux only."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


def database_pids(database: str) -> list[int]:
    """The PostgreSQL server processes serving this database (the workers' connections), when local."""
    if not database.startswith("postgresql"):
        return []
    name = database.rsplit("/", 1)[1]
    with psycopg.connect(libpq_url(database), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchall()
    return [row[0] for row in rows]


def cpu_in_process(app: Any, paths: dict[str, list[tuple[str, str | None]]], blocks: int) -> dict[str, float]:
    """CPU per request (ms) of each named list of (path, bearer token) through ``app``'s whole WSGI stack (hooks,
    auth, view, serialization, headers, database session), called as gunicorn calls it but without the HTTP
    server: the median of ``blocks`` passes over the list (``time.process_time`` of this process: the database's
    own CPU is not in it). Back to back, the interpreter's caches stay warm: a request arriving alone on a busy
    machine costs more (the HTTP figures show how much)."""
    from werkzeug.test import EnvironBuilder

    figures: dict[str, float] = {}
    for name, calls in paths.items():
        environs = [
            EnvironBuilder(
                path=path,
                headers={"Authorization": f"Bearer {token}"} if token else {},
                base_url="http://127.0.0.1:8000",
            ).get_environ()
            for path, token in calls
        ]

        def run(environ: dict[str, Any], name: str = name) -> None:
            statuses: list[str] = []
            body = app(dict(environ), lambda status, headers, exc_info=None: statuses.append(status))
            for _chunk in body:
                pass
            getattr(body, "close", lambda: None)()
            assert statuses[0].startswith("200"), (name, statuses)

        for environ in environs[:20]:  # warm: connections, statement caches
            run(environ)
        per_block = []
        for _block in range(blocks):
            started = time.process_time()
            for environ in environs:
                run(environ)
            per_block.append((time.process_time() - started) * 1000 / len(environs))
        figures[name] = round(sorted(per_block)[len(per_block) // 2], 3)
    return figures
