"""CDR ingest through ``POST /ocpi/2.2.1/cdrs`` (gunicorn, 2 workers, PostgreSQL, loopback).

Closed loop with 16 requests in flight: N distinct CDRs (the official example with a unique id and one of our
tokens, so each stores with card + account), then 20 % of them again (retries must answer 1000 with the same
Location and store nothing). Baseline in the same run: an auth-only request (``GET /cdrs/0`` → 404) at the same
concurrency, to show the framework's own ceiling next to ours.

As in production, the server has a Celery broker (Redis, database 3 here): new CDRs are sent for rating in
batches (``rating.rate_cdrs``, app/rating/queueing.py) and rated by Celery workers, not in the request. The
benchmark checks that every new CDR was queued exactly once, then empties that queue (rating throughput is
benchmark ``bench_pricing``'s subject).

Usage: ``.venv/bin/python bench/bench_cdrs.py [--cdrs 6000]``
"""

from __future__ import annotations

import os as _os
from pathlib import Path as _Path

# ../shared beside the checkout (as in CI), or EMSP_SHARED_DIR.
SHARED = _Path(_os.environ.get("EMSP_SHARED_DIR") or _Path(__file__).resolve().parents[2] / "shared")

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path

import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ocpi_bench_common import (
    SERVER_DESCRIPTION,
    Gunicorn,
    auth_header,
    ensure_database,
    libpq_url,
    seed_tokens,
    uid_of,
    write_result,
)

EXAMPLE = json.loads((SHARED / "ocpi-2.2.1/examples/cdr_example.json").read_text())
CONCURRENCY = 16
QUEUE = "celery"  # CELERY_TASK_DEFAULT_QUEUE


def cdr_body(run: str, n: int) -> bytes:
    cdr = {
        **EXAMPLE,
        "id": f"{run}-{n}",
        "cdr_token": {
            "country_code": "BE",
            "party_id": "VLT",
            "uid": uid_of(n * 7 % 1_000_000),
            "type": "RFID",
            "contract_id": f"BEVLTC{n * 7 % 1_000_000:08d}",
        },
    }
    return json.dumps(cdr).encode()


async def _drive(base_url: str, requests_: list[tuple[str, str, bytes | None]]) -> tuple[float, dict[int, int]]:
    import aiohttp

    headers = {"Authorization": auth_header(), "Content-Type": "application/json"}
    statuses: dict[int, int] = {}
    queue: asyncio.Queue = asyncio.Queue()
    for item in requests_:
        queue.put_nowait(item)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def worker() -> None:
            while not queue.empty():
                method, path, body = queue.get_nowait()
                async with session.request(method, base_url + path, data=body, headers=headers) as response:
                    payload = await response.read()
                    status = response.status
                    # 201 Created for a new CDR, 200 for a repeat (status_codes).
                    if method == "POST" and (status not in (200, 201) or json.loads(payload)["status_code"] != 1000):
                        raise SystemExit(f"POST failed: {status} {payload[:300]!r}")
                    statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started, statuses


def _queued_cdr_ids(client: redis.Redis) -> list[int]:
    """The CDR ids in the ``rating.rate_cdrs`` messages waiting in the queue (Celery message protocol 2)."""
    ids: list[int] = []
    for raw in client.lrange(QUEUE, 0, -1):
        message = json.loads(raw)
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        if message["headers"]["task"] == "rating.rate_cdrs":
            ids.extend(args[0])
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cdrs", type=int, default=6000)
    args = parser.parse_args()
    ensure_database()
    seed_tokens()
    run = str(int(time.time()))
    distinct = [("POST", "/ocpi/2.2.1/cdrs", cdr_body(run, n)) for n in range(args.cdrs)]
    repeats = distinct[: args.cdrs // 5]
    with psycopg.connect(libpq_url()) as conn:
        before = conn.execute("select count(*) from roaming_cdrs").fetchone()[0]
    broker = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/3")
    redis_client = redis.Redis.from_url(broker)
    redis_client.delete(QUEUE)
    with Gunicorn(workers=2, env={"CELERY_BROKER_URL": broker}) as server:
        asyncio.run(_drive(server.base_url, [("GET", "/ocpi/2.2.1/cdrs/0", None)] * 200))  # warm-up
        baseline_s, _ = asyncio.run(_drive(server.base_url, [("GET", "/ocpi/2.2.1/cdrs/0", None)] * 3000))
        new_s, _ = asyncio.run(_drive(server.base_url, distinct))
        repeat_s, _ = asyncio.run(_drive(server.base_url, repeats))
        time.sleep(1.0)  # the web processes send their last batch of CDR ids (every 0.2 s)
    with psycopg.connect(libpq_url()) as conn:
        stored = conn.execute("select count(*) from roaming_cdrs").fetchone()[0] - before
    assert stored == args.cdrs, f"stored {stored}, expected {args.cdrs}"
    queued_ids = _queued_cdr_ids(redis_client)
    queued, messages = len(queued_ids), redis_client.llen(QUEUE)
    redis_client.delete(QUEUE)
    assert len(set(queued_ids)) == queued, "a CDR was queued for rating twice"
    assert queued == args.cdrs, f"queued {queued} rating tasks, expected one per new CDR ({args.cdrs})"
    mixed_rate = (len(distinct) + len(repeats)) / (new_s + repeat_s)
    result = {
        "cdrs": args.cdrs,
        "repeats": len(repeats),
        "stored": stored,
        "concurrency": CONCURRENCY,
        "new_cdrs_per_s": round(len(distinct) / new_s),
        "repeats_per_s": round(len(repeats) / repeat_s),
        "mixed_per_s": round(mixed_rate),
        "target_per_s": 300,
        "meets_target": mixed_rate >= 300,
        "baseline_auth_only_per_s": round(3000 / baseline_s),
        "ratio_cdr_vs_auth_only": round((len(distinct) / new_s) / (3000 / baseline_s), 2),
        "rating_cdrs_queued": queued,
        "rating_messages": messages,
        "server": SERVER_DESCRIPTION + ", Celery broker Redis (rating queued)",
    }
    print(result)
    write_result("cdrs", result)


if __name__ == "__main__":
    main()
