"""Benchmark of the OCPI pricing engine (app.pricing): CDRs priced per second on one core.

Data: tariffs sampled from the real NDW feed (data/ocpi-nl-10-cities/tariffs.json.gz, those with 1-3
elements) plus generated time-restricted tariffs (day/night, peak hours, weekend, power tiers, parking
windows); synthetic CDRs with 1-5 charging/parking periods spread over two weeks (including the spring
DST change), priced in Europe/Amsterdam. Tariffs are parsed and compiled once, as in production. Measured in
one call:

* ``compiled``: price_session on parsed CdrInput objects with precompiled tariffs (target >= 30,000/s);
* ``with_json``: the same including json.loads + parse_cdr of each CDR document;
* ``naive``: the engine without precompilation (the tariff is compiled again for every CDR), on a slice.

Medians over ``--runs`` runs are written to bench/results.json under the key "pricing" (read-modify-write:
other benchmarks own other keys).

    python bench/bench_pricing.py [--n 1000000] [--runs 3] [--profile]
"""

from __future__ import annotations

import os as _os
from pathlib import Path as _Path

# ../shared beside the checkout (as in CI), or EMSP_SHARED_DIR.
SHARED = _Path(_os.environ.get("EMSP_SHARED_DIR") or _Path(__file__).resolve().parents[2] / "shared")

import argparse
import contextlib
import gzip
import importlib
import importlib.util
import json
import platform
import random
import statistics
import sys
import tempfile
import time
import types
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL_TARIFFS = SHARED / "data/ocpi-nl-10-cities/tariffs.json.gz"
RESULTS = ROOT / "bench" / "results.json"
PROFILE_FILE = str(Path(tempfile.gettempdir()) / "bench_pricing.prof")
ZONE = "Europe/Amsterdam"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if importlib.util.find_spec("flask") is None and "app" not in sys.modules:
    # app.pricing is pure; without Flask installed, skip app/__init__.py (the Flask factory).
    _stub = types.ModuleType("app")
    _stub.__path__ = [str(ROOT / "app")]
    sys.modules["app"] = _stub

pricing = importlib.import_module("app.pricing")
compiled_mod = importlib.import_module("app.pricing.compiled")


def real_tariffs(rng: random.Random) -> list:
    raw = json.loads(gzip.decompress(REAL_TARIFFS.read_bytes()), parse_float=Decimal)
    out = []
    for obj in raw:
        if 1 <= len(obj.get("elements", [])) <= 3:
            with contextlib.suppress(pricing.PricingInputError):
                out.append(pricing.parse_tariff(obj))
    rng.shuffle(out)
    return out


def generated_tariffs(rng: random.Random, count: int) -> list:
    """Time-restricted tariffs of the shapes CPOs publish, with 1-3 elements."""

    def comp(dim: str, price: str, step: int = 1, vat: int | None = 21) -> dict:
        c = {"type": dim, "price": Decimal(price), "step_size": step}
        if vat is not None:
            c["vat"] = vat
        return c

    shapes = [
        lambda: [  # day/night energy
            {
                "price_components": [comp("ENERGY", "0.29")],
                "restrictions": {"start_time": "23:00", "end_time": "07:00"},
            },
            {"price_components": [comp("ENERGY", "0.39"), comp("FLAT", "0.35")]},
        ],
        lambda: [  # peak hours on weekdays, idle fee after 2 hours
            {
                "price_components": [comp("ENERGY", "0.55")],
                "restrictions": {
                    "start_time": "17:00",
                    "end_time": "21:00",
                    "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
                },
            },
            {"price_components": [comp("TIME", "1.20", 60)], "restrictions": {"min_duration": 7200}},
            {"price_components": [comp("ENERGY", "0.42")]},
        ],
        lambda: [  # power tiers
            {"price_components": [comp("ENERGY", "0.35")], "restrictions": {"max_power": 22}},
            {"price_components": [comp("ENERGY", "0.59"), comp("FLAT", "0.99", 1, None)]},
        ],
        lambda: [  # parking in business hours, weekend discount
            {
                "price_components": [comp("ENERGY", "0.30")],
                "restrictions": {"day_of_week": ["SATURDAY", "SUNDAY"]},
            },
            {"price_components": [comp("ENERGY", "0.40"), comp("PARKING_TIME", "2.00", 300)]},
            {
                "price_components": [comp("PARKING_TIME", "0.50", 900)],
                "restrictions": {"start_time": "09:00", "end_time": "18:00"},
            },
        ],
        lambda: [  # first 20 kWh dearer, start fee, max price
            {
                "price_components": [comp("ENERGY", "0.45", 1), comp("FLAT", "0.50")],
                "restrictions": {"max_kwh": 20},
            },
            {"price_components": [comp("ENERGY", "0.35", 100)]},
        ],
    ]
    out = []
    for i in range(count):
        elements = shapes[i % len(shapes)]()
        obj = {"currency": "EUR", "id": f"GEN{i}", "elements": elements}
        if i % 5 == 4:
            obj["max_price"] = {"excl_vat": Decimal("25.00"), "incl_vat": Decimal("30.25")}
        out.append(pricing.parse_tariff(obj))
    return out


def cdr_documents(rng: random.Random, count: int) -> list[str]:
    """CDR JSON documents (only the fields pricing needs) with 1-5 periods."""
    base = datetime(2026, 3, 23, tzinfo=UTC)
    docs = []
    for i in range(count):
        start = base + timedelta(minutes=rng.randrange(0, 14 * 24 * 60))
        t = start
        periods = []
        n = rng.randint(1, 5)
        for j in range(n):
            minutes = rng.randint(5, 120)
            charging = j < n - 1 or n == 1 or rng.random() < 0.5
            if charging:
                kw = rng.choice([3.7, 7.4, 11, 22, 50, 150])
                dims = [
                    {"type": "ENERGY", "volume": round(kw * minutes / 60 * rng.uniform(0.6, 1.0), 3)},
                    {"type": "TIME", "volume": round(minutes / 60, 4)},
                ]
                if rng.random() < 0.5:
                    dims.append({"type": "MAX_POWER", "volume": kw})
            else:
                dims = [{"type": "PARKING_TIME", "volume": round(minutes / 60, 4)}]
            periods.append({"start_date_time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "dimensions": dims})
            t += timedelta(minutes=minutes)
        docs.append(
            json.dumps(
                {
                    "id": f"CDR{i}",
                    "start_date_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end_date_time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "currency": "EUR",
                    "charging_periods": periods,
                }
            )
        )
    return docs


def run_compiled(pairs: list, n: int) -> float:
    price = pricing.price_session
    m = len(pairs)
    t0 = time.perf_counter()
    for i in range(n):
        ct, cdr = pairs[i % m]
        price(ct, cdr, ZONE)
    return n / (time.perf_counter() - t0)


def run_with_json(pairs_json: list, n: int) -> float:
    price, loads, parse_cdr = pricing.price_session, pricing.loads, pricing.parse_cdr
    m = len(pairs_json)
    t0 = time.perf_counter()
    for i in range(n):
        ct, doc = pairs_json[i % m]
        price(ct, parse_cdr(loads(doc)), ZONE)
    return n / (time.perf_counter() - t0)


def run_naive(pairs: list, n: int) -> float:
    """Baseline: no precompilation — every CDR compiles its tariff from the parsed Tariff again."""
    price, compile_ = pricing.price_session, compiled_mod.CompiledTariff
    m = len(pairs)
    t0 = time.perf_counter()
    for i in range(n):
        ct, cdr = pairs[i % m]
        price(compile_(ct.tariff), cdr, ZONE)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="CDRs priced per run (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per variant; medians are reported")
    parser.add_argument("--naive-fraction", type=float, default=0.1, help="share of --n used for the baseline")
    parser.add_argument("--profile", action="store_true", help="cProfile one compiled run instead")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/results.json")
    args = parser.parse_args()

    rng = random.Random(20260601)
    real = real_tariffs(rng)
    generated = generated_tariffs(rng, 60)
    tariffs = [pricing.compile_tariff(t) for t in real[:240] + generated]
    docs = cdr_documents(rng, 20_000)
    cdrs = [pricing.parse_cdr(pricing.loads(d)) for d in docs]
    pairs, pairs_json = [], []
    for i, (doc, cdr) in enumerate(zip(docs, cdrs, strict=True)):
        ct = tariffs[rng.randrange(len(tariffs))] if i % 3 else tariffs[len(real[:240]) + i % len(generated)]
        pairs.append((ct, cdr))
        pairs_json.append((ct, doc))
    sample_static = sum(1 for ct, _ in pairs if ct.session.static) / len(pairs)

    if args.profile:
        import cProfile
        import pstats

        cProfile.runctx("run_compiled(pairs, args.n)", globals(), {"pairs": pairs, "args": args}, PROFILE_FILE)
        pstats.Stats(PROFILE_FILE).sort_stats("tottime").print_stats(20)
        return

    compiled_rates, json_rates, naive_rates = [], [], []
    n_naive = max(1, int(args.n * args.naive_fraction))
    for run in range(args.runs):
        compiled_rates.append(run_compiled(pairs, args.n))
        json_rates.append(run_with_json(pairs_json, args.n))
        naive_rates.append(run_naive(pairs, n_naive))
        print(
            f"run {run + 1}: compiled {compiled_rates[-1]:,.0f}/s, with JSON {json_rates[-1]:,.0f}/s, "
            f"naive {naive_rates[-1]:,.0f}/s",
            flush=True,
        )
    figures = {
        "unit": "CDRs per second, one core, median of runs",
        "n_cdrs": args.n,
        "n_cdrs_naive": n_naive,
        "runs": args.runs,
        "distinct_tariffs": len(tariffs),
        "distinct_cdrs": len(cdrs),
        "share_static_tariff_pairs": round(sample_static, 3),
        "timezone": ZONE,
        "compiled_per_s": round(statistics.median(compiled_rates)),
        "with_json_parsing_per_s": round(statistics.median(json_rates)),
        "naive_no_precompilation_per_s": round(statistics.median(naive_rates)),
        "ratio_compiled_vs_naive": round(statistics.median(compiled_rates) / statistics.median(naive_rates), 2),
        "target_per_s": 30_000,
        "python": platform.python_version(),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        results = {}
        if RESULTS.exists():
            try:
                results = json.loads(RESULTS.read_text())
            except ValueError:
                results = {}
        results["pricing"] = figures
        tmp = RESULTS.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        tmp.replace(RESULTS)


if __name__ == "__main__":
    main()
