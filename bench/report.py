"""The benchmarks' figures as a table a person can read: ``bench/results.json`` → ``bench/README.md``.

``make bench`` renders it after ``bench/run_all.py`` has run the scripts; ``.venv/bin/python bench/report.py``
re-renders the table from whatever ``results.json`` holds. Each benchmark writes its own key in its own shape
(its scripts know best what to keep); :data:`SPECS` says, per key, where that entry keeps the headline figure,
the target, the baseline measured in the same run and the ratio, and what size of data it was measured on. A key
without a spec (a new benchmark) still gets a row, so nothing measured is hidden, and
``tests/test_bench_report.py`` fails until the benchmark has its spec.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
README = HERE / "README.md"

Entry = Mapping[str, Any]


def get(entry: Entry, path: str) -> Any:
    """``a.b.c`` inside nested dicts; None when any part is missing."""
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


@dataclass(frozen=True)
class Spec:
    title: str
    script: str
    figure: str  # path of the headline figure in the entry
    unit: str
    target: str
    size: Callable[[Entry], str]
    baseline: str | None = None  # path of the baseline measured in the same run
    baseline_label: str = ""
    ratio: str | None = None  # path of the ratio the entry reports
    sized: bool = False  # the key holds one entry per data size ({"shared": {...}, "70k": {...}})


def _count(entry: Entry, *paths: str) -> str:
    parts = []
    for path in paths:
        value = get(entry, path)
        if value is not None:
            name = path.split(".")[-1].removeprefix("n_").replace("_", " ")
            parts.append(f"{_number(value)} {name}")
    return ", ".join(parts)


SPECS: dict[str, Spec] = {
    "authorize": Spec(
        "real-time authorization at 300/s, 60 s",
        "bench_authorize.py",
        "p99_ms",
        "ms p99",
        "p99 < 10 ms",
        lambda e: _count(e, "tokens"),
        baseline="baseline_auth_only_p99_ms",
        baseline_label="auth-only request p99",
        ratio="ratio_p50_vs_auth_only",
    ),
    "cdrs": Spec(
        "CDR ingest over HTTP, 16 in flight",
        "bench_cdrs.py",
        "new_cdrs_per_s",
        "new CDRs/s",
        "≥ 300/s",
        lambda e: _count(e, "cdrs", "repeats"),
        baseline="baseline_auth_only_per_s",
        baseline_label="auth-only requests/s",
        ratio="ratio_cdr_vs_auth_only",
    ),
    "token_list": Spec(
        "the whole token list through Link pages",
        "bench_token_list.py",
        "seconds_median",
        "s",
        "< 60 s for 1M (issue 17: < 90 s for 1.5M)",
        lambda e: _count(e, "tokens"),
        baseline="last_page_by_plain_offset_ms",
        baseline_label="last page by plain offset, ms",
        ratio="ratio_deep_offset_vs_keyset_page",
    ),
    "billing_run": Spec(
        "monthly invoice run to finalization, 2 processes",
        "bench_billing_run.py",
        "run_s_2_process",
        "s",
        "< 300 s for 100k accounts / 1M CDRs",
        lambda e: _count(e, "accounts", "cdrs"),
        baseline="baseline_accounts_per_s",
        baseline_label="accounts/s, one transaction per account",
        ratio="ratio_batched_vs_per_account",
    ),
    "pricing": Spec(
        "pricing with precompiled tariffs, one core",
        "bench_pricing.py",
        "compiled_per_s",
        "CDRs/s",
        "≥ 30,000/s",
        lambda e: _count(e, "n_cdrs", "distinct_tariffs"),
        baseline="naive_no_precompilation_per_s",
        baseline_label="naive CDRs/s",
        ratio="ratio_compiled_vs_naive",
    ),
    "pdf": Spec(
        "invoice PDFs, 2 processes",
        "bench_pdf.py",
        "ours_per_s_2_processes",
        "PDFs/s",
        "≥ 8/s",
        lambda e: _count(e, "invoices_per_run", "lines_per_invoice"),
        baseline="baseline_per_s_2_processes",
        baseline_label="plain WeasyPrint PDFs/s",
        ratio="ratio_vs_baseline_2_processes",
    ),
    "locations": Spec(
        "location import",
        "bench_locations.py",
        "import_s",
        "s",
        "< 60 s for 70,000",
        lambda e: _count(e, "n_locations", "n_evses"),
        baseline="per_object_path_per_1000_s",
        baseline_label="per-object PUT path, s per 1,000",
        ratio="ratio_per_object_vs_import",
        sized=True,
    ),
    "finder": Spec(
        "nearest 20 within 10 km with prices, in-process",
        "bench_finder.py",
        "finder.p95_ms",
        "ms p95",
        "p95 < 8 ms",
        lambda e: _count(e, "n_locations"),
        baseline="kdtree.p95_ms",
        baseline_label="scipy KD-tree p95 ms (floor)",
        ratio="ratio_finder_vs_kdtree_p95",
        sized=True,
    ),
    "finder_http": Spec(
        "nearest 20 with prices over HTTP (gunicorn, 2 workers)",
        "bench_finder_http.py",
        "http_one_client.p95_ms",
        "ms p95",
        "p95 < 25 ms; ≥ 300 req/s",
        lambda e: _count(e, "n_locations"),
        baseline="kdtree.p95_ms",
        baseline_label="scipy KD-tree p95 ms (floor)",
        ratio="ratio_http_vs_kdtree_p95",
        sized=True,
    ),
    "api": Spec(
        "app API: /sessions/active + /cards at 300/s",
        "bench_api.py",
        "p99_ms",
        "ms p99",
        "p99 < 15 ms",
        lambda e: _count(e, "accounts"),
        baseline="baseline_status_p99_ms",
        baseline_label="/api/v1/status p99 ms",
        ratio="ratio_p99_vs_status",
    ),
    "demo_generate": Spec(
        "flask demo generate (bulk, one transaction)",
        "bench_demo_generate.py",
        "total_s",
        "s",
        "1M CDRs in a few minutes",
        lambda e: _count(e, "data_size.accounts", "data_size.cdrs"),
        baseline="baseline_sessions_and_cdrs.orm_s_median",
        baseline_label="ORM path s (same rows)",
        ratio="baseline_sessions_and_cdrs.ratio_orm_vs_bulk",
        sized=True,
    ),
    "load_and_batch": Spec(
        "authorization at 300/s while a CDR import and an invoice run go on",
        "bench_load_and_batch.py",
        "p99_ms_during_batch",
        "ms p99",
        "no error, no deadlock; p99 reported",
        lambda e: _count(e, "data_size.accounts", "data_size.import_cdrs", "data_size.invoice_run_cdrs"),
        baseline="p99_ms_alone",
        baseline_label="authorization alone p99 ms",
        ratio="ratio_p99_during_batch_vs_alone",
        sized=True,
    ),
    "stale_plans": Spec(
        "finder searches after a first location feed (plans made on empty tables)",
        "bench_stale_plans.py",
        "median_ms",
        "ms median",
        "no search reaches the statement time-out",
        lambda e: _count(e, "data_size.locations"),
        baseline="baseline_median_ms",
        baseline_label="without refreshing the statistics, ms median (time-outs counted as the time-out)",
        ratio="ratio_without_vs_with",
        sized=True,
    ),
    "soak": Spec(
        "5 minutes of authorize (300/s) and finder together",
        "bench_soak.py",
        "authorize_p99_ms",
        "ms p99 (authorize)",
        "errors 0 (latency reported; alone: authorize p99 < 10 ms, finder p95 < 25 ms)",
        lambda e: _count(e, "data_size.tokens", "data_size.locations"),
        baseline="finder_rate_per_s",
        baseline_label="finder requests/s sustained beside it",
        sized=True,
    ),
    "national": Spec(
        "national scale: generate, rate, authorize, monthly run, token list, sizes",
        "bench_national.py",
        "total_s",
        "s in all",
        "authorize p99 < 10 ms at 300/s; run < 15 min for 1M accounts (2 processes); tokens < 90 s for 1.5M",
        lambda e: _count(e, "data_size.accounts", "data_size.cards", "data_size.cdrs"),
        baseline="steps.authorize.baseline_auth_only.p99_ms",
        baseline_label="auth-only request p99 ms",
        ratio="steps.authorize.ratio_p50_vs_auth_only",
        sized=True,
    ),
}


@dataclass(frozen=True)
class Row:
    key: str
    size_name: str
    spec: Spec | None
    entry: Entry


def rows(results: Mapping[str, Any]) -> Iterator[Row]:
    for key in sorted(results):
        spec = SPECS.get(key)
        entry = results[key]
        if not isinstance(entry, Mapping) or not entry:
            continue
        if spec is not None and spec.sized:
            for size_name in sorted(entry):
                if isinstance(entry[size_name], Mapping) and size_name != "before_change":
                    yield Row(key, size_name, spec, entry[size_name])
        else:
            yield Row(key, "", spec, entry)


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, str) and value.replace(".", "", 1).isdigit():
        return _number(float(value) if "." in value else int(value))
    return str(value)


def _met(entry: Entry) -> str:
    met = [value for key, value in entry.items() if key.startswith("meets_target") and isinstance(value, bool)]
    if not met:
        return "—"
    return "yes" if all(met) else "**no**"


def _load(entry: Entry) -> str:
    for key in ("load_average_1m_at_end", "load_average_1m_during", "load_average_1m_at_start"):
        if key in entry:
            return str(entry[key])
    return "—"


def render(results: Mapping[str, Any]) -> str:
    lines = [
        "# Benchmark figures",
        "",
        "Rendered from `bench/results.json` by `bench/report.py` (`make bench` runs every `bench/bench_*.py` on",
        "PostgreSQL, then this). Each script's docstring says how it measures; every figure is a median of the",
        "script's runs, with a baseline measured in the same run where one exists (these 2-core machines are noisy:",
        "the ratio holds better than the absolute figure). The load average says how busy the machine was.",
        "",
        "| benchmark | data | figure | target | met | baseline (same run) | ratio | load | measured | script |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows(results):
        entry, spec = row.entry, row.spec
        name = row.key + (f" ({row.size_name})" if row.size_name else "")
        if spec is None:
            cells = [f"`{name}` (no spec in bench/report.py)", "", "", "", _met(entry), "", "", _load(entry)]
            cells += [str(entry.get("measured_at", "—")), ""]
        else:
            figure = get(entry, spec.figure)
            if figure is None:  # a figure read off a run's log rather than measured by the script says so
                approximate = get(entry, spec.figure + "_approx")
                figure = f"≈ {_number(approximate)}" if approximate is not None else None
            baseline = get(entry, spec.baseline) if spec.baseline else None
            cells = [
                f"{spec.title} (`{name}`)",
                spec.size(entry) or "—",
                f"{_number(figure)} {spec.unit}" if figure is not None else "—",
                spec.target,
                _met(entry),
                f"{_number(baseline)} ({spec.baseline_label})" if baseline is not None else "—",
                _number(get(entry, spec.ratio)) if spec.ratio else "—",
                _load(entry),
                str(entry.get("measured_at", "—"))[:10],
                f"`bench/{spec.script}`",
            ]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    lines += ["", "Every entry's full figures (all percentiles, per-phase times, notes) are in `results.json`.", ""]
    return "\n".join(lines)


def main() -> int:
    results = json.loads(RESULTS.read_text())
    README.write_text(render(results))
    print(f"wrote {README.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
