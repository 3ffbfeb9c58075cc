"""Benchmark of the charger finder over HTTP: ``GET /api/v1/locations/nearby?lat=&lon=&radius_km=10&limit=20`` on
gunicorn (the project's gunicorn.conf.py: gthread workers, keep-alive), 2 workers, loopback (issue 14 targets:
p95 under 25 ms and at least 300 requests/s on 2 workers).

The data are bench_finder.py's (``--size``: the 7,609 shared locations, or synthetic ones spread like them),
stored in-process first; then gunicorn serves the same database. Two phases on the same query points (spread like
the data, as bench_finder.py draws them), after a warm-up of both workers:

* latency: one client, one request at a time (keep-alive): p50/p95/p99 of the round trip;
* throughput: ``--clients`` clients at once (each its own keep-alive connection, closed loop) for ``--seconds``:
  requests/s, and the latency under that load.

The client runs on the same 2 cores as the server and the database: its own CPU is part of what is measured (a
thread per client, http.client, ~0.1 ms a request; the throughput phase does not parse the answers). The CPU the
server spends per request (gunicorn workers and their PostgreSQL backends, from /proc) is reported too, with the
rate 2 idle cores would give at that cost: on a machine shared with other jobs the wall-clock figures are the share
those jobs leave. Beside it, ``cpu_ms_per_request_in_process``: the same searches through the app's WSGI stack in
this process, back to back (no HTTP server, caches warm). The floor, measured in the
same run on the same points: the in-process KD-tree of bench_finder.py; the ratio HTTP p95 / KD-tree p95 is
reported. The rate limit of the finder's API is switched off for the server under test (``RATELIMIT_ENABLED=0``):
it is there for the public, and 300 requests/s from one address is what it refuses.

    python bench/bench_finder_http.py --database postgresql+psycopg://postgres@127.0.0.1:5432/bench_finder_http
    python bench/bench_finder_http.py --database sqlite:////tmp/finder-http.sqlite3 --size small --requests 50

Medians over ``--runs`` runs go to bench/results.json under "finder_http" → the size (read-modify-write).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "bench"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_finder import (  # bench/ is the script's folder
    DEFAULT_URL,
    LIMIT,
    RADIUS_KM,
    RESULTS,
    SIZES,
    empty_tables,
    load,
    median_of,
    percentiles,
    query_points,
    run_kdtree,
)
from flask_migrate import upgrade
from ocpi_bench_common import child_pids, cpu_in_process, cpu_seconds, database_pids, free_port
from scratch_database import ensure_database

from app import create_app
from app.extensions import db
from app.finder.spatial import forget_spatial_index, spatial_index

TARGET_P95_MS = 25.0
TARGET_RPS = 300.0
PATH = "/api/v1/locations/nearby"


class Server:
    """gunicorn on a free loopback port, ``workers`` workers, the project's gunicorn.conf.py."""

    def __init__(self, database: str, workers: int) -> None:
        self.port = free_port()
        environment = {
            **os.environ,
            "DATABASE_URL": database,
            "APP_ENV": "development",
            "SERVER_NAME": "",
            "RATELIMIT_ENABLED": "0",
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
                "wsgi:app",
            ],
            cwd=ROOT,
            env=environment,
        )

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + 180  # a worker imports the app on its first request: slow on a busy machine
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                connection.close()
                if response.status == 200:
                    return
                raise SystemExit(f"the server answers {response.status} to {path}")
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise SystemExit("gunicorn did not start")

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _path(lat: float, lon: float) -> str:
    return f"{PATH}?lat={lat:.6f}&lon={lon:.6f}&radius_km={RADIUS_KM:g}&limit={LIMIT}"


def _get(connection: http.client.HTTPConnection, path: str, *, count: bool = True) -> int:
    """One search; the number of results when ``count`` (parsing the answer costs the client ~0.3 ms, which the
    throughput phase, sharing the cores with the server, does not spend)."""
    connection.request("GET", path, headers={"Accept-Language": "nl"})
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
    return len(json.loads(body)["items"]) if count else 0


def latency(port: int, paths: list[str]) -> tuple[dict[str, float], float]:
    """One client, one request at a time: the round trips, and the mean number of results."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples, found = [], 0
    for path in paths:
        started = time.perf_counter()
        found += _get(connection, path)
        samples.append(time.perf_counter() - started)
    connection.close()
    return percentiles(samples), found / len(paths)


def throughput(port: int, paths: list[str], clients: int, seconds: float) -> tuple[float, dict[str, float]]:
    """``clients`` closed-loop clients for ``seconds``: requests/s and the latency under that load."""
    stop = time.perf_counter() + seconds
    samples: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        index = number
        try:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                _get(connection, paths[index % len(paths)], count=False)
                samples[number].append(time.perf_counter() - started)
                index += clients
        except BaseException as exc:  # reported below: a failed request fails the benchmark
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    done = [sample for own in samples for sample in own]
    return len(done) / elapsed, percentiles(done)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="shared")
    parser.add_argument("--requests", type=int, default=500, help="latency phase: requests per run")
    parser.add_argument("--clients", type=int, default=8, help="throughput phase: concurrent clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput phase: length of a run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.database.startswith("postgresql"):
        ensure_database(args.database)
    # The rate limit is off in this process too (its in-process figures ask 1,500 searches from one address).
    app = create_app("development", SQLALCHEMY_DATABASE_URI=args.database, RATELIMIT_ENABLED=False)
    with app.app_context():
        upgrade()
        forget_spatial_index()
        data = load(args.size)
        real = data.pop("real")
        index = spatial_index().value
        dialect = db.session.get_bind().dialect.name
        db.session.remove()
    server = Server(args.database, args.workers)
    figures: dict[str, list[dict[str, float]]] = {"http": [], "under_load": [], "kdtree": []}
    rates: list[float] = []
    cpu_per_request: list[float] = []
    results_per_query = 0.0
    try:
        server.wait_ready(_path(*query_points(real, 1, seed=99)[0]))
        for run in range(args.runs):
            points = query_points(real, args.requests, seed=run)
            paths = [_path(lat, lon) for lat, lon in points]
            throughput(server.port, paths[:40], args.clients, 2.0)  # warm-up: every worker and thread
            measured, results_per_query = latency(server.port, paths)
            figures["http"].append(measured)
            pids = server.worker_pids() + database_pids(args.database)
            cpu_before = cpu_seconds(pids)
            rate, loaded = throughput(server.port, paths, args.clients, args.seconds)
            cpu_per_request.append((cpu_seconds(pids) - cpu_before) / (rate * args.seconds))
            rates.append(rate)
            figures["under_load"].append(loaded)
            with app.app_context():
                figures["kdtree"].append(run_kdtree(points)[0])
                db.session.remove()
            print(f"run {run + 1}: http {measured} {rate:.0f} req/s under load {loaded}", flush=True)
    finally:
        server.stop()
    with app.app_context():
        # The same searches through the app's WSGI stack in this process, back to back: what a search costs the
        # server's Python without HTTP and without a cold start (compare server_cpu_ms_per_request).
        in_process = cpu_in_process(app, {"nearby": [(path, None) for path in paths]}, blocks=3)["nearby"]
        db.session.remove()
    http, kdtree = median_of(figures["http"]), median_of(figures["kdtree"])
    rate = statistics.median(rates)
    entry: dict[str, Any] = {
        **data,
        "database": dialect,
        "spatial_index": index,
        "server": f"gunicorn, gunicorn.conf.py (gthread), {args.workers} workers, loopback, rate limit off",
        "request": f"GET {PATH}?lat=&lon=&radius_km={RADIUS_KM:g}&limit={LIMIT} (anonymous: Pay-as-you-go prices)",
        "requests_per_run": args.requests,
        "runs": args.runs,
        "mean_results_per_query": round(results_per_query, 2),
        "http_one_client": http,
        "throughput_clients": args.clients,
        "throughput_seconds_per_run": args.seconds,
        "requests_per_s": round(rate, 1),
        "http_under_load": median_of(figures["under_load"]),
        # What a request costs the machine (gunicorn workers + their PostgreSQL backends), whoever else is on it:
        # on a shared, busy machine the rate above is the share left to us; 2 cores / this is what 2 cores give.
        "server_cpu_ms_per_request": round(statistics.median(cpu_per_request) * 1000, 3),
        "requests_per_s_on_2_idle_cores_from_cpu": round(2 / statistics.median(cpu_per_request), 1),
        "cpu_ms_per_request_in_process": in_process,
        "kdtree": kdtree,
        "ratio_http_vs_kdtree_p95": round(http["p95_ms"] / kdtree["p95_ms"], 1),
        "target_p95_ms": TARGET_P95_MS,
        "target_requests_per_s": TARGET_RPS,
        "meets_target": http["p95_ms"] < TARGET_P95_MS and rate >= TARGET_RPS,
        "python": platform.python_version(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "unit": "milliseconds per request, client side, median over runs",
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with app.app_context():
        empty_tables()
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    results.setdefault("finder_http", {})[args.size] = entry
    args.results.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(entry, indent=2))
    return entry


if __name__ == "__main__":
    main()
