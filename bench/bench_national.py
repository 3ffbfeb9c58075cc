"""Benchmark: national scale on one machine (issue 17, "Scale"), step by step on PostgreSQL.

"1,000,000 accounts, 1,500,000 cards, 100,000 locations, 10,000,000 CDRs over 10 months: authorization p99 under
10 ms at 300/s with the 10M-row tables present; the monthly run for 1,000,000 accounts to finalization in under
15 minutes with 2 processes; the token list of 1,500,000 tokens in under 90 s; database size reported per table."

Steps, in this order, each timed and each skippable (``--skip NAME``, repeatable):

1. ``generate``: the scratch database's schema dropped and migrated, then ``flask demo generate`` as an operator
   runs it (a subprocess with ``DATABASE_URL``), sessions over ``--months`` months ending with the last full
   month. Skipped when the database already holds that data (same counts, same last month) unless
   ``--regenerate``: national data takes long to make and is kept between runs.
2. ``rate``: the last month's CDRs, through the rating service's own unit (``app.rating.pending``: one savepoint
   per CDR, a problem recorded when one fails), with ``--processes`` processes over disjoint sets of accounts (a
   session's fees depend on the account's earlier sessions of the month: an account stays in one process, its
   CDRs rated in start order), a commit per 1,000 CDRs. Baseline in the same call: the service's own pass
   (``rate_pending_batches``, what ``flask rating rate-pending`` runs), one process, on the oldest pending CDRs.
   At national size the engine rates one account in 10 (100,000 CDRs: the rate is the figure; the whole month
   would take most of an hour) and the rest of the month gets the history's set-based charges.
3. ``history``: the months before. A run's preview rates *every* pending CDR in its one transaction
   (``billing.runs.services.preview`` calls ``rate_pending()``), and a run bills every rated session up to its
   month's end that is on no invoice yet: unless the older months are rated *and invoiced*, the measured run
   would rate 9 months in its preview and bill 10 months at once. So: charges for the older CDRs written
   set-based in SQL (the CPO cost the CDR states, no fees, 21 % VAT; ``--history-charges engine`` rates them
   through the service instead, hours at national size), then the run of the month before, timed (a first run).
4. ``authorize``: gunicorn (2 workers) on this database, a bench partner, ``POST /ocpi/2.2.1/tokens/{uid}/authorize``
   open loop at ``--auth-rate``/s over a random sample of the generated cards (every state), answers tallied
   (ALLOWED, BLOCKED, ...) next to what the sampled cards' states predict; baseline: the auth-only request
   ``GET /ocpi/2.2.1/cdrs/0`` at the same rate, as ``bench_authorize.py`` does.
5. ``run``: the monthly run of the last month, preview → approve → finalize with ``--processes`` processes;
   checked: no failed account, every number series gapless (1..n), the run's numbers one block, nothing left
   uninvoiced.
6. ``tokens``: the whole Tokens list through ``Link`` as a CPO's whitelist sync (``bench_token_list.fetch_all``);
   baseline: the last page fetched by plain offset.
7. ``sizes``: rows, table, index and TOAST size per table that holds rows, the largest indexes, the total.

The worker processes of rating and both runs (``bench_billing_run``'s initializer: one app each, as a Celery worker
has) and gunicorn are started once, by the first step that needs them, before its clock for the workers.

Writes bench/results.json key "national", under the size's name (other keys and sizes are left as they are), with
each step's figures, the targets judged (national size only) and, for the other sizes, each step's time scaled
linearly to the national size (``national_estimate_s``: a lower bound).

    .venv/bin/python bench/bench_national.py --size national      # hours, ~45 GB: see national_estimate_s
    .venv/bin/python bench/bench_national.py --size regional      # 1/100 of it, a few minutes
    .venv/bin/python bench/bench_national.py --size small         # the default; tests/test_bench_national.py

A step skipped (``--skip``) keeps the figures of the same size's earlier call, marked ``from_earlier_call_at``:
the long loads (generate, rate, history) can run apart from the steps that want a quiet machine.

Each size has a database of its own (``bench_national`` for national, ``bench_national_<size>`` otherwise) unless
``--database`` or ``BENCH_NATIONAL_DATABASE_URL`` names one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results.json"

import national_data
import national_web
from scratch_database import ensure_database

from app import create_app
from app.demo.generate import default_month

STEPS = ("generate", "rate", "history", "authorize", "run", "tokens", "sizes")
SIZES: dict[str, dict[str, Any]] = {
    "small": {
        "accounts": 300,
        "cards_per_account": "1.5",
        "locations": 200,
        "cdrs": 3_000,
        "months": 3,
        "rate_baseline_cdrs": 100,
        "auth_seconds": 2,
        "auth_baseline_seconds": 1,
        "token_runs": 1,
    },
    "regional": {  # 1/100 of national, a few minutes: the figures of the steps that scale with the data scale to it
        "accounts": 10_000,
        "cards_per_account": "1.5",
        "locations": 1_000,
        "cdrs": 100_000,
        "months": 10,
        "rate_baseline_cdrs": 1_000,
        "auth_seconds": 30,
        "auth_baseline_seconds": 10,
        "token_runs": 2,
    },
    "national": {
        "accounts": 1_000_000,
        "cards_per_account": "1.5",
        "locations": 100_000,
        "cdrs": 10_000_000,
        "months": 10,
        "rate_baseline_cdrs": 2_000,
        "rate_sample_every": 10,  # 100,000 of the month's CDRs through the engine, the rest set-based
        "auth_seconds": 60,
        "auth_baseline_seconds": 20,
        "token_runs": 2,
    },
}
TARGETS = {"authorize_p99_ms": 10.0, "run_s_for_1m_accounts": 900, "tokens_s_for_1_5m": 90}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _url_for(size: str, database: str | None) -> str:
    url = database or os.environ.get("BENCH_NATIONAL_DATABASE_URL")
    if url is None:
        name = "bench_national" if size == "national" else f"bench_national_{size}"
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    if not url.startswith("postgresql"):
        raise SystemExit("the national benchmark runs on PostgreSQL (its sizes and COPY paths): give --database")
    return url


# ------------------------------------------------------------------------------------------------ the whole


def _step(name: str, skip: set[str], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    if name in skip:
        print(f"== {name}: skipped", flush=True)
        return {"skipped": True}
    print(f"== {name} (load {_load()}) ...", flush=True)
    load_before = _load()
    started = time.perf_counter()
    figures = work()
    figures["step_s"] = round(time.perf_counter() - started, 2)
    figures["load_average_1m"] = [load_before, _load()]
    shown = {key: value for key, value in figures.items() if key not in ("tables", "largest_indexes")}
    print(f"== {name}: {json.dumps(shown)}", flush=True)
    return figures


def _verdicts(size_name: str, steps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each target, judged on the national size only; the other sizes give the extrapolation."""
    national = size_name == "national"
    authorize, run, tokens = steps["authorize"], steps["run"], steps["tokens"]
    verdicts: dict[str, Any] = {}
    if "p99_ms" in authorize:
        at_target_rate = national and authorize["rate_per_s"] >= 300
        verdicts["authorize_p99_under_10_ms_at_300_per_s"] = (
            authorize["p99_ms"] < TARGETS["authorize_p99_ms"] and not authorize["errors"] if at_target_rate else None
        )
    if "run_s" in run:
        verdicts["run_1m_accounts_under_15_min"] = run["run_s"] < TARGETS["run_s_for_1m_accounts"] if national else None
    if "seconds_median" in tokens:
        verdicts["tokens_1_5m_under_90_s"] = (
            tokens["seconds_median"] < TARGETS["tokens_s_for_1_5m"] if national else None
        )
    return verdicts


def _national_estimate(size: dict[str, Any], steps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Seconds each step would take at the national size, scaled linearly from this one (rows for the generator
    and the sizes, a month's CDRs for rating, accounts for the runs, tokens for the list; the authorization load
    lasts as long at any size). A lower bound: past some size the tables no longer fit in memory."""
    national = SIZES["national"]
    rows = national["cdrs"] / size["cdrs"]
    accounts = national["accounts"] / size["accounts"]
    estimate: dict[str, Any] = {}
    generate, rate, history = steps["generate"], steps["rate"], steps["history"]
    if "generate_s" in generate:
        estimate["generate"] = round(
            (generate["generate_s"] + generate["vacuum_analyze_s"]) * rows + generate["reset_and_migrate_s"]
        )
    if rate.get("cdrs_per_s"):  # the whole month through the engine
        estimate["rate"] = round(national["cdrs"] / national["months"] / rate["cdrs_per_s"])
    if "run" in history:
        estimate["history"] = round(
            (history["charges_s"] + history["clear_billing_and_vacuum_s"]) * rows + history["run"]["run_s"] * accounts
        )
    if "step_s" in steps["authorize"]:
        estimate["authorize"] = round(steps["authorize"]["step_s"])
    if "run_s" in steps["run"]:
        estimate["run"] = round(steps["run"]["run_s"] * accounts)
    if "seconds_median" in steps["tokens"]:
        tokens = steps["tokens"]
        estimate["tokens"] = round(tokens["step_s"] * 1_500_000 / max(tokens["tokens"], 1))
    if "step_s" in steps["sizes"]:
        estimate["sizes"] = round(steps["sizes"]["step_s"] * rows)
    estimate["total"] = sum(estimate.values())
    estimate["note"] = "linear in the data from this size; a lower bound (caches, larger indexes)"
    return estimate


def _carry_skipped_steps(steps: dict[str, dict[str, Any]], earlier: dict[str, Any] | None) -> None:
    """A step skipped in this call keeps the figures an earlier call of the same size measured on the same data
    (marked with when): national data is measured in parts, the long loads apart from the latency-sensitive steps
    that want a quiet machine (``--skip`` both ways)."""
    if not earlier:
        return
    for name, figures in steps.items():
        before = earlier.get("steps", {}).get(name) or {}
        if figures.get("skipped") and before and not before.get("skipped"):
            steps[name] = {**before, "from_earlier_call_at": before.get("from_earlier_call_at", earlier["measured_at"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--database", help="a scratch PostgreSQL database (default: bench_national[_<size>])")
    parser.add_argument("--month", help="the last month with sessions, the one the run bills (default: last month)")
    parser.add_argument("--skip", action="append", choices=STEPS, default=[], help="a step not to run (repeatable)")
    parser.add_argument("--regenerate", action="store_true", help="generate even when the data is there")
    parser.add_argument("--rerate", action="store_true", help="drop every charge and invoice and rate again")
    parser.add_argument("--processes", type=int, default=2, help="processes for rating and the run")
    parser.add_argument("--history-charges", choices=("sql", "engine"), default="sql")
    parser.add_argument("--rate-baseline-cdrs", type=int, help="CDRs the one-process service pass rates (0: none)")
    parser.add_argument("--rate-sample-every", type=int, help="the engine rates one account in N (the rest set-based)")
    parser.add_argument("--auth-rate", type=float, default=300)
    parser.add_argument("--auth-seconds", type=float)
    parser.add_argument("--auth-baseline-seconds", type=float)
    parser.add_argument("--auth-sample", type=int, default=50_000, help="cards sampled for the authorize load")
    parser.add_argument("--token-runs", type=int)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    size = dict(SIZES[args.size])
    for key in ("rate_baseline_cdrs", "rate_sample_every", "auth_seconds", "auth_baseline_seconds", "token_runs"):
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    url = _url_for(args.size, args.database)
    ensure_database(url)
    # The processes this script starts (generator, rating and run workers, gunicorn) build their app from these.
    os.environ.update({"DATABASE_URL": url, "APP_ENV": "development"})
    app = create_app("development", SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        month = args.month or default_month(dt.datetime.now(dt.UTC))
    skip = set(args.skip)
    load_at_start = [round(value, 2) for value in os.getloadavg()]
    started = time.perf_counter()
    steps: dict[str, dict[str, Any]] = {}
    workers = national_data.Workers(args.processes)  # started by the first step that needs them
    server = national_web.SharedServer(url)  # likewise
    try:
        steps["generate"] = _step(
            "generate", skip, lambda: national_data.step_generate(app, url, size, month, args.regenerate)
        )
        steps["rate"] = _step(
            "rate",
            skip,
            lambda: national_data.step_rate(
                app, workers, month, size["rate_baseline_cdrs"], args.rerate, size.get("rate_sample_every", 1)
            ),
        )
        steps["history"] = _step(
            "history", skip, lambda: national_data.step_history(app, workers, month, args.history_charges)
        )
        steps["authorize"] = _step(
            "authorize",
            skip,
            lambda: national_web.step_authorize(
                server, args.auth_rate, size["auth_seconds"], size["auth_baseline_seconds"], args.auth_sample
            ),
        )
        steps["run"] = _step("run", skip, lambda: national_data.step_run(app, workers, month, size["accounts"]))
        steps["tokens"] = _step("tokens", skip, lambda: national_web.step_tokens(server, size["token_runs"]))
    finally:
        server.stop()
        workers.stop()
    steps["sizes"] = _step("sizes", skip, lambda: national_web.step_sizes(url))
    earlier = json.loads(args.results.read_text()).get("national", {}).get(args.size) if args.results.exists() else None
    _carry_skipped_steps(steps, earlier)
    entry = {
        "figure": "national scale, step by step: generate, rate, history, authorize, monthly run, token list, sizes",
        "unit": "s (per step), ms (authorization latency)",
        "database": "PostgreSQL (local)",
        "data_size": {
            **{key: size[key] for key in ("accounts", "cards_per_account", "locations", "cdrs", "months")},
            "month": month,
            "cards": (steps["generate"].get("rows") or {}).get("cards"),
        },
        "targets": {
            "authorize": "p99 < 10 ms at 300/s with the 10M-row tables present",
            "run": "1,000,000 accounts to finalization in < 15 min with 2 processes",
            "tokens": "1,500,000 tokens in < 90 s",
        },
        "meets_target": _verdicts(args.size, steps),
        "national_estimate_s": None if args.size == "national" else _national_estimate(size, steps),
        "steps": steps,
        "errors": sum(step.get("errors", 0) for step in steps.values()),
        "total_s": round(time.perf_counter() - started, 1),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        },
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    figures = json.loads(args.results.read_text()) if args.results.exists() else {}
    figures.setdefault("national", {})[args.size] = entry
    args.results.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(json.dumps({key: entry[key] for key in ("meets_target", "errors", "total_s")}, indent=2))
    if entry["errors"]:
        raise SystemExit(f"{entry['errors']} error(s): see the steps in {args.results}")


if __name__ == "__main__":
    main()
