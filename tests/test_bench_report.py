"""``bench/report.py`` renders ``bench/results.json`` as the table in ``bench/README.md``: every benchmark script
has its spec (where its entry keeps the headline figure, the target, the same-run baseline), so a new benchmark
cannot land without a row that says what it measured."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import report  # noqa: E402  (bench/ is a folder of scripts, not a package)


def test_every_benchmark_script_has_a_spec():
    scripts = {path.name for path in BENCH.glob("bench_*.py")}
    assert scripts == {spec.script for spec in report.SPECS.values()}


def test_the_table_shows_each_entry_with_its_figure_target_and_baseline():
    results = {
        "authorize": {
            "p99_ms": 6.13,
            "baseline_auth_only_p99_ms": 5.53,
            "ratio_p50_vs_auth_only": 1.01,
            "tokens": 1_000_000,
            "meets_target": True,
            "measured_at": "2026-12-06T22:57:01Z",
            "load_average_1m_at_end": 1.75,
        },
        "finder": {
            "shared": {
                "finder": {"p95_ms": 29.03},
                "kdtree": {"p95_ms": 0.06},
                "n_locations": 7609,
                "meets_target": False,
                "ratio_finder_vs_kdtree_p95": 484.0,
            }
        },
        "brand_new": {"meets_target": True},
        "empty": {},
    }
    table = report.render(results)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 3
    authorize, brand_new, finder = rows
    assert "6.13 ms p99" in authorize and "p99 < 10 ms" in authorize and "5.53 (auth-only request p99)" in authorize
    assert "1,000,000 tokens" in authorize and "| yes |" in authorize and "2026-12-06" in authorize
    assert "`brand_new` (no spec in bench/report.py)" in brand_new
    assert (
        "finder (shared)" in finder and "29.03 ms p95" in finder and "**no**" in finder and "7,609 locations" in finder
    )


def test_the_stored_results_render():
    results = json.loads((BENCH / "results.json").read_text())
    table = report.render(results)
    for key in results:
        if results[key]:
            assert f"`{key}" in table
