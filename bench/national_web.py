"""The steps of ``bench_national.py`` that go through the OCPI door (authorize, the token list) and the sizes
report: gunicorn on the national database, the bench partner of ``ocpi_bench_common``, the load generator of
``bench_authorize`` and the Link-following client of ``bench_token_list``."""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections import Counter
from typing import Any
from urllib.parse import quote

import psycopg
import requests
from bench_authorize import run_load
from bench_token_list import LIMIT, fetch_all
from ocpi_bench_common import SERVER_DESCRIPTION, Gunicorn, _ensure_partner, _prewarm, auth_header

AUTH_ONLY_PATH = "/ocpi/2.2.1/cdrs/0"  # 404 after the partner's token check: the framework's own cost


class SharedServer:
    """One gunicorn (2 workers, gunicorn.conf.py) for the steps that call the OCPI door, started by the first of
    them (its start counts in that step's time) and stopped at the end: each start costs both workers' imports."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.server: Gunicorn | None = None

    def base_url(self) -> str:
        if self.server is None:
            self.server = Gunicorn(workers=2, env={"DATABASE_URL": self.url})
        return self.server.base_url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _expected_answer(status: str, block_reason: str | None, expires_at: dt.datetime | None, now: dt.datetime) -> str:
    """What ``roaming.send.authorization.decide`` answers for a card in this state (the account's standing
    apart: an account in arrears answers NO_CREDIT for its active cards too)."""
    if status in ("replaced", "expired") or (expires_at is not None and expires_at <= now):
        return "EXPIRED"
    if status == "blocked":
        return "NO_CREDIT" if block_reason == "payment" else "BLOCKED"
    return "ALLOWED" if status == "active" else "BLOCKED"


def _sample_cards(url: str, sample: int) -> list[tuple[str, str, str, str | None, dt.datetime | None]]:
    """Cards with a token (every state but ordered-without-uid), in a random but repeatable order."""
    with psycopg.connect(_libpq(url)) as conn:
        _ensure_partner(conn)
        conn.execute("SELECT setseed(0.17)")
        rows = conn.execute(
            "SELECT uid, token_type, status, block_reason, expires_at FROM cards WHERE uid IS NOT NULL "
            "ORDER BY random() LIMIT %s",
            (sample,),
        ).fetchall()
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        _prewarm(conn)  # the card table and its uid indexes in memory, as on a database serving for a while
    return rows


def step_authorize(
    server: SharedServer, rate: float, seconds: float, baseline_seconds: float, sample: int
) -> dict[str, Any]:
    cards = _sample_cards(server.url, sample)
    paths = [f"/ocpi/2.2.1/tokens/{quote(uid, safe='')}/authorize?type={kind}" for uid, kind, *_rest in cards]
    now = dt.datetime.now(dt.UTC)
    sent = int(rate * seconds)
    expected = Counter(_expected_answer(*cards[index % len(cards)][2:], now) for index in range(sent))
    base_url = server.base_url()
    run_load(base_url, 100, min(seconds, 3), paths, "POST")  # warm-up: connections, caches, the partner
    baseline = run_load(base_url, rate, baseline_seconds, [AUTH_ONLY_PATH], "GET")
    target = run_load(base_url, rate, seconds, paths, "POST", tally_allowed=True)
    not_ok = sum(count for status, count in target["statuses"].items() if int(status) != 200)
    baseline_bad = baseline["errors"] + sum(
        count for status, count in baseline["statuses"].items() if int(status) != 404
    )
    return {
        "rate_per_s": rate,
        "duration_s": seconds,
        "sampled_cards": len(cards),
        "requests": target["sent"],
        "answered": target["ok"],
        "achieved_rate": target["achieved_rate"],
        "p50_ms": target["p50_ms"],
        "p90_ms": target["p90_ms"],
        "p99_ms": target["p99_ms"],
        "max_ms": target["max_ms"],
        "statuses": target["statuses"],
        "answers": target["allowed"],
        "answers_expected_from_card_states": dict(expected),
        "baseline_auth_only": {
            key: baseline[key] for key in ("sent", "errors", "statuses", "achieved_rate", "p50_ms", "p99_ms")
        },
        "ratio_p50_vs_auth_only": round(target["p50_ms"] / baseline["p50_ms"], 2) if baseline["p50_ms"] else None,
        "server": SERVER_DESCRIPTION + "; open-loop load in its own process",
        "latency_note": "measured from the scheduled send time (open loop), so queueing is included",
        "errors": target["errors"] + not_ok + baseline_bad,
    }


def step_tokens(server: SharedServer, token_runs: int) -> dict[str, Any]:
    with psycopg.connect(_libpq(server.url)) as conn:
        _ensure_partner(conn)
        # What the list holds (app.roaming.send.whitelist.token_page): every card with a token but ordered ones.
        expected = conn.execute("SELECT count(*) FROM cards WHERE uid IS NOT NULL AND status <> 'ordered'").fetchone()[
            0
        ]
    runs, wrong = [], 0
    base_url = server.base_url()
    for _ in range(4):  # warm-up: both workers past their first request (lazy imports, the partner)
        requests.get(
            f"{base_url}/ocpi/2.2.1/tokens?limit=1", headers={"Authorization": auth_header()}, timeout=60
        ).raise_for_status()
    for _ in range(token_runs):
        tokens, seconds, page_times = fetch_all(base_url)
        wrong += tokens != expected
        runs.append({"tokens": tokens, "s": round(seconds, 2), "pages": len(page_times), "page_times": page_times})
        print(f"   {tokens} tokens in {seconds:.1f} s ({len(page_times)} pages)", flush=True)
    started = time.perf_counter()
    requests.get(
        f"{base_url}/ocpi/2.2.1/tokens?offset={max(expected - LIMIT, 0)}&limit={LIMIT}",
        headers={"Authorization": auth_header()},
        timeout=300,
    ).raise_for_status()
    deep_offset_ms = (time.perf_counter() - started) * 1000
    seconds = statistics.median(run["s"] for run in runs)
    page_ms = statistics.median(t for run in runs for t in run["page_times"]) * 1000
    return {
        "tokens": expected,
        "page_limit": LIMIT,
        "runs": [{key: run[key] for key in ("tokens", "s", "pages")} for run in runs],
        "seconds_median": seconds,
        "tokens_per_s": round(expected / seconds) if seconds else None,
        "extrapolated_s_for_1_5m": round(seconds * 1_500_000 / expected, 1) if expected else None,
        "page_ms_median_keyset": round(page_ms, 1),
        "baseline_last_page_by_plain_offset_ms": round(deep_offset_ms, 1),
        "ratio_deep_offset_vs_keyset_page": round(deep_offset_ms / page_ms, 1) if page_ms else None,
        "errors": wrong,
    }


def step_sizes(url: str, largest_indexes: int = 25) -> dict[str, Any]:
    """Rows (counted), table, index and TOAST size per table of the schema that holds rows, the largest
    indexes, the database total."""
    mb = 1024 * 1024
    with psycopg.connect(_libpq(url)) as conn:
        tables = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid), "
            "coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' "
            "ORDER BY 2 DESC, 1"
        ).fetchall()
        indexes = conn.execute(
            "SELECT i.relname, t.relname, pg_relation_size(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public' ORDER BY 3 DESC, 1"
        ).fetchall()
        rows = {
            name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # noqa: S608 (catalogue names)
            for name, *_sizes in tables
        }
        total = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {
        "database_mb": round(total / mb, 1),
        # Lists, largest first (results.json is written with sorted keys: a mapping would come out by name).
        "tables": [
            {
                "table": name,
                "rows": rows[name],
                "total_mb": round(whole / mb, 1),
                "table_mb": round(heap / mb, 1),
                "indexes_mb": round(index / mb, 1),
                "toast_mb": round(toast / mb, 1),
            }
            for name, whole, heap, index, toast in tables
            if rows[name]
        ],
        "empty_tables": sorted(name for name in rows if not rows[name]),
        "largest_indexes": [
            {"index": name, "table": table, "mb": round(size / mb, 2)}
            for name, table, size in indexes[:largest_indexes]
        ],
        "indexes_total_mb": round(sum(size for _name, _table, size in indexes) / mb, 1),
        "errors": 0,
    }
