"""The whole token list through the paginated Tokens GET: 1,000,000 tokens, ``limit=1000``, following ``Link``
as a CPO's whitelist sync would (gunicorn, 2 workers, PostgreSQL, loopback).

Baseline in the same run: the same number of pages fetched by plain ``offset`` (no cursor in the URL) for
the first 50,000 tokens and extrapolated would be unfair (OFFSET cost grows with depth), so instead the
baseline fetches the *last* page by offset once and reports its latency next to the keyset page latency.

Usage: ``.venv/bin/python bench/bench_token_list.py``
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ocpi_bench_common import (
    N_TOKENS,
    SERVER_DESCRIPTION,
    Gunicorn,
    auth_header,
    ensure_database,
    seed_tokens,
    write_result,
)

LIMIT = 1000


def fetch_all(base_url: str) -> tuple[int, float, list[float]]:
    session = requests.Session()
    headers = {"Authorization": auth_header()}
    url: str | None = f"{base_url}/ocpi/2.2.1/tokens?limit={LIMIT}"
    tokens = 0
    page_times = []
    started = time.perf_counter()
    while url:
        page_started = time.perf_counter()
        response = session.get(url, headers=headers, timeout=60)
        response.raise_for_status()
        tokens += len(response.json()["data"])
        page_times.append(time.perf_counter() - page_started)
        link = response.headers.get("Link")
        url = link.split(";")[0].strip("<> ") if link else None
    return tokens, time.perf_counter() - started, page_times


def main() -> None:
    ensure_database()
    seed_tokens()
    runs = []
    with Gunicorn(workers=2) as server:
        headers = {"Authorization": auth_header()}
        for _ in range(2):
            tokens, seconds, page_times = fetch_all(server.base_url)
            assert tokens == N_TOKENS, tokens
            runs.append((seconds, page_times))
            print(f"{tokens} tokens in {seconds:.1f} s ({len(page_times)} pages)")
        offset_times = []
        for _ in range(3):
            started = time.perf_counter()
            requests.get(
                f"{server.base_url}/ocpi/2.2.1/tokens?offset={N_TOKENS - LIMIT}&limit={LIMIT}",
                headers=headers,
                timeout=120,
            ).raise_for_status()
            offset_times.append(time.perf_counter() - started)
    seconds = statistics.median([run[0] for run in runs])
    page_ms = statistics.median([t for run in runs for t in run[1]]) * 1000
    deep_offset_ms = statistics.median(offset_times) * 1000
    write_result(
        "token_list",
        {
            "tokens": N_TOKENS,
            "page_limit": LIMIT,
            "runs": len(runs),
            "seconds_median": round(seconds, 1),
            "tokens_per_s": round(N_TOKENS / seconds),
            "target_seconds": 60,
            "meets_target": seconds < 60,
            "page_ms_median_keyset": round(page_ms, 1),
            "last_page_by_plain_offset_ms": round(deep_offset_ms, 1),
            "ratio_deep_offset_vs_keyset_page": round(deep_offset_ms / page_ms, 1),
            "server": SERVER_DESCRIPTION + "; client follows Link (keyset cursor + carried total)",
        },
    )


if __name__ == "__main__":
    main()
