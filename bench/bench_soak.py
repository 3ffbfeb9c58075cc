"""A 5-minute load test (issue 17): real-time authorization and the charger finder at their target rates at once,
errors counted, latency per minute (does it drift?) and the web workers' memory at the start and the end.

The data: ``flask demo generate`` (``--accounts`` drivers with 1.5 cards each, ``--locations`` charge points around
Belgian and Dutch cities, a few thousand rated CDRs) and a CPO partner calling with a token, as
``bench_load_and_batch.py`` prepares them (the database is reset). gunicorn (``gunicorn.conf.py``, 2 workers) on
loopback, the finder API's rate limit off (it is there for the public: 300 requests/s from one address is what it
refuses), new authorizations logged as in production. Two open-loop streams, each from a process of its own (the
async generator of ``bench_api.py``: requests are sent at the scheduled times whether or not earlier ones
returned, and each latency is measured from its scheduled time, so queueing shows):

- ``POST /ocpi/2.2.1/tokens/{uid}/authorize`` at ``--authorize-rate`` (300/s: issue 17's target), random RFID
  cards of the drivers (active, blocked, expired);
- ``GET /api/v1/locations/nearby?lat=&lon=&radius_km=10&limit=20`` around the generated cities.

The finder has no rate target of its own: first its sustained rate *next to* the authorizations at 300/s is
found, in steps of ``--step-seconds`` at rising rates (sustained: no error, at least 95 % of the rate achieved,
nothing queueing: the finder's p99 under 250 ms and the authorizations' under 100 ms; ``--finder-rate`` skips the
steps); then both run for ``--duration`` seconds (300), the finder
at that rate. Every answer other than 200, and every request not answered within 10 s, is an error.

    .venv/bin/python bench/bench_soak.py                  # 5 minutes (BENCH_DATABASE_URL or .../bench_emsp)
    .venv/bin/python bench/bench_soak.py --size small     # seconds (tests/test_bench_soak.py)

Figures go to bench/results.json under "soak", by size.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
RESULTS = HERE / "results.json"

from bench_load_and_batch import DEFAULT_DATABASE, LoadProcess, prepare
from ocpi_bench_common import SERVER_DESCRIPTION, Gunicorn, auth_header, latency_figures, write_sized_result

SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "accounts": 50_000,
        "locations": 10_000,
        "run_cdrs": 5_000,
        "authorize_rate": 300.0,
        "finder_steps": (25, 50, 100, 150, 200, 300, 400, 600),
        "step_seconds": 10.0,
        "duration": 300.0,
        "window": 60.0,
    },
    "small": {
        "accounts": 20,
        "locations": 60,
        "run_cdrs": 40,
        "authorize_rate": 30.0,
        "finder_steps": (5, 10),
        "step_seconds": 1.5,
        "duration": 4.0,
        "window": 2.0,
    },
}
TIMEOUT_S = 10.0
# A step is held when nothing queues: a 10-second step with p99 in the hundreds of ms was already queueing, and
# 5 minutes at that rate ended in 10-second authorizations (measured: finder 200/s next to 300/s, 584 time-outs).
SUSTAINED_P99_MS = 250.0
SUSTAINED_AUTHORIZE_P99_MS = 100.0
AUTHORIZE_TARGET_P99_MS = 10.0  # issue 17 (at national scale)
FINDER_TARGET_P95_MS = 25.0  # issue 14


# --- the load generator -------------------------------------------------------------------------------------------


async def _open_loop(
    base_url: str,
    rate: float,
    seconds: float,
    calls: list[tuple[str, str, bytes | None]],
    headers: dict[str, str],
    window: float,
) -> dict[str, Any]:
    """``rate`` requests a second for ``seconds``, open loop; latencies overall and per ``window`` of scheduled
    time."""
    import aiohttp

    latencies: list[tuple[float, float]] = []  # (scheduled offset s, latency ms)
    statuses: dict[str, int] = {}
    error_kinds: dict[str, int] = {}
    windows_failed: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter() + 0.2

        async def one(method: str, path: str, body: bytes | None, scheduled: float) -> None:
            bucket = int((scheduled - start) // window)
            try:
                async with session.request(method, base_url + path, data=body, headers=headers) as response:
                    await response.read()
                    statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
                    if response.status != 200:
                        windows_failed[bucket] = windows_failed.get(bucket, 0) + 1
            except Exception as error:  # refused, dropped or too slow: counted, by kind
                error_kinds[type(error).__name__] = error_kinds.get(type(error).__name__, 0) + 1
                windows_failed[bucket] = windows_failed.get(bucket, 0) + 1
                return
            latencies.append((scheduled - start, (time.perf_counter() - scheduled) * 1000))

        total = int(rate * seconds)
        tasks = []
        for index in range(total):
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            method, path, body = calls[index % len(calls)]
            tasks.append(asyncio.create_task(one(method, path, body, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    values = [latency for _offset, latency in latencies]
    errors = sum(error_kinds.values()) + sum(count for status, count in statuses.items() if status != "200")
    per_window = []
    for bucket in range(max(1, int(-(-seconds // window)))):
        inside = [latency for offset, latency in latencies if int(offset // window) == bucket]
        per_window.append(
            {"from_s": round(bucket * window, 1), "answered": len(inside), "errors": windows_failed.get(bucket, 0)}
            | percentiles(inside)
        )
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "sent": total,
        "answered": len(values),
        "errors": errors,
        "error_kinds": error_kinds,
        "statuses": statuses,
        "achieved_rate": round(len(values) / elapsed, 1) if elapsed > 0 else 0.0,
        **percentiles(values),
        "per_window": per_window,
    }


def percentiles(values: list[float]) -> dict[str, float]:
    return latency_figures(values, (50, 95, 99))


def run_together(
    base_url: str, loads: dict[str, LoadProcess], streams: dict[str, tuple[Any, ...]]
) -> dict[str, dict[str, Any]]:
    """Each stream (``name: (rate, seconds, calls, headers, window)``) from its load process, all at once."""
    for name, arguments in streams.items():
        loads[name].start(_open_loop, base_url, *arguments)
    return {name: loads[name].result(timeout=arguments[1] + 120) for name, arguments in streams.items()}


# --- the server's memory ------------------------------------------------------------------------------------------


def worker_memory_mb(master_pid: int) -> list[float]:
    """Resident memory of each gunicorn worker (the master's children), from /proc (Linux); [] elsewhere."""
    try:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    except OSError:
        return []
    sizes = []
    for child in children:
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(round(int(line.split()[1]) / 1024, 1))
    return sizes


# --- the run ------------------------------------------------------------------------------------------------------


def _finder_calls(rng: random.Random, count: int) -> list[tuple[str, str, bytes | None]]:
    from app.demo.generate_catalogue import CITIES

    calls: list[tuple[str, str, bytes | None]] = []
    for _ in range(count):
        city = rng.choice(CITIES)
        lat, lon = city.latitude + rng.gauss(0, 0.03), city.longitude + rng.gauss(0, 0.05)
        calls.append(("GET", f"/api/v1/locations/nearby?lat={lat:.5f}&lon={lon:.5f}&radius_km=10&limit=20", None))
    return calls


def _mean_results(base_url: str, calls: list[tuple[str, str, bytes | None]]) -> float:
    """How many charge points a finder answer holds on average (over the first 20 query points): the load asks
    real questions, not empty areas."""
    import urllib.request

    counts = []
    for _method, path, _body in calls[:20]:
        with urllib.request.urlopen(base_url + path, timeout=TIMEOUT_S) as response:  # noqa: S310 (loopback)
            counts.append(len(json.loads(response.read())["items"]))
    return round(sum(counts) / len(counts), 1)


def _sustained(step: dict[str, dict[str, Any]], rate: float) -> bool:
    finder, authorize = step["finder"], step["authorize"]
    return (
        not finder["errors"]
        and not authorize["errors"]
        and finder["achieved_rate"] >= 0.95 * rate
        and finder["p99_ms"] < SUSTAINED_P99_MS
        and authorize["p99_ms"] < SUSTAINED_AUTHORIZE_P99_MS
    )


def _summary(stream: dict[str, Any]) -> dict[str, Any]:
    return {key: stream[key] for key in ("rate_per_s", "achieved_rate", "errors", "p50_ms", "p95_ms", "p99_ms")}


def _measure(
    server: Gunicorn,
    loads: dict[str, LoadProcess],
    size: dict[str, Any],
    authorize_calls: list[tuple[str, str, bytes | None]],
    authorize_headers: dict[str, str],
    finder_calls: list[tuple[str, str, bytes | None]],
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], float, float, tuple[list[float], list[float]]]:
    """Warm-up, the finder's steps next to the authorizations, the soak; with the workers' memory before and
    after."""
    authorize_rate, window = float(size["authorize_rate"]), float(size["window"])
    run_together(
        server.base_url,
        loads,
        {
            "authorize": (min(authorize_rate, 50.0), 2.0, authorize_calls, authorize_headers, 2.0),
            "finder": (10.0, 2.0, finder_calls, {}, 2.0),
        },
    )  # warm-up: both workers loaded, connections and caches
    memory_start = worker_memory_mb(server.process.pid)
    mean_results = _mean_results(server.base_url, finder_calls)
    steps: list[dict[str, Any]] = []
    finder_rate = float(size["finder_steps"][0])
    step_seconds = float(size["step_seconds"])
    for rate in size["finder_steps"]:
        step = run_together(
            server.base_url,
            loads,
            {
                "authorize": (authorize_rate, step_seconds, authorize_calls, authorize_headers, step_seconds),
                "finder": (float(rate), step_seconds, finder_calls, {}, step_seconds),
            },
        )
        sustained = _sustained(step, float(rate))
        steps.append(
            {"finder_rate": rate, "sustained": sustained} | {name: _summary(stream) for name, stream in step.items()}
        )
        print(f"step finder {rate}/s", steps[-1], flush=True)
        if not sustained:
            break
        finder_rate = float(rate)
    duration = float(size["duration"])
    print(f"soak: authorize {authorize_rate}/s and finder {finder_rate}/s for {duration:.0f} s", flush=True)
    soak = run_together(
        server.base_url,
        loads,
        {
            "authorize": (authorize_rate, duration, authorize_calls, authorize_headers, window),
            "finder": (finder_rate, duration, finder_calls, {}, window),
        },
    )
    return soak, steps, finder_rate, mean_results, (memory_start, worker_memory_mb(server.process.pid))


def _server_description(workers: int) -> str:
    return SERVER_DESCRIPTION.replace("2 workers", f"{workers} workers") + "; finder API rate limit off"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--duration", type=float, help="Seconds of the soak (both streams at once).")
    parser.add_argument("--authorize-rate", type=float)
    parser.add_argument("--step-seconds", type=float)
    parser.add_argument("--finder-rate", type=float, help="The finder's rate in the soak (no steps).")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (gunicorn.conf.py's threads each).")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    size = dict(SIZES[args.size])
    for key in ("duration", "authorize_rate", "step_seconds"):
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    if args.finder_rate is not None:
        size["finder_steps"] = (args.finder_rate,)  # one step: held, it is the soak's rate
    data = prepare(args.database, size, dt.datetime.now(dt.UTC))
    print(f"data ready: {size['accounts']} accounts, {size['locations']} locations", flush=True)
    rng = random.Random(42)
    body = b'{"location_id": "LOC1"}'
    authorize_calls = [
        ("POST", f"/ocpi/2.2.1/tokens/{rng.choice(data['uids'])}/authorize?type=RFID", body) for _ in range(20_000)
    ]
    authorize_headers = {"Authorization": auth_header(), "Content-Type": "application/json"}
    finder_calls = _finder_calls(rng, 5_000)
    env = {"DATABASE_URL": args.database, "RATELIMIT_ENABLED": "0", "RATELIMIT_STORAGE_URI": "memory://"}
    loads = {"authorize": LoadProcess(), "finder": LoadProcess()}
    try:
        with Gunicorn(workers=args.workers, env=env) as server:
            soak, steps, finder_rate, mean_results, memory = _measure(
                server, loads, size, authorize_calls, authorize_headers, finder_calls
            )
    finally:
        for load in loads.values():
            load.close()
    memory_start, memory_end = memory
    duration = float(size["duration"])
    for name, stream in soak.items():
        print(name, {key: value for key, value in stream.items() if key != "per_window"}, flush=True)
    errors = {name: stream["errors"] for name, stream in soak.items()}
    entry = {
        "size": args.size,
        "database": "postgresql" if args.database.startswith("postgresql") else "sqlite",
        "server": _server_description(args.workers),
        "data_size": {"accounts": size["accounts"], "tokens": len(data["uids"]), "locations": size["locations"]},
        "duration_s": duration,
        "authorize": soak["authorize"],
        "finder": soak["finder"],
        "finder_rate_per_s": finder_rate,
        "finder_mean_results_per_query": mean_results,
        "finder_rate_is_lower_bound": bool(steps) and all(step["sustained"] for step in steps),
        "finder_steps": steps,
        "errors": errors,
        "no_errors": not any(errors.values()),
        "meets_target": not any(errors.values()),  # issue 17: errors 0 (latencies reported)
        "authorize_p99_ms": soak["authorize"]["p99_ms"],
        "authorize_target_p99_ms": AUTHORIZE_TARGET_P99_MS,
        "finder_p95_ms": soak["finder"]["p95_ms"],
        "finder_target_p95_ms": FINDER_TARGET_P95_MS,
        "worker_memory_mb_start": memory_start,
        "worker_memory_mb_end": memory_end,
        "latency_note": "open loop, measured from the scheduled send time, so queueing is included",
    }
    write_sized_result(args.results, "soak", args.size, entry)
    print(json.dumps({"errors": errors, "finder_rate_per_s": finder_rate}), flush=True)


if __name__ == "__main__":
    main()
