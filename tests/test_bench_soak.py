"""The load test (bench/bench_soak.py) at its small size: authorizations and finder searches at once, open loop, on
gunicorn with 2 workers, a few seconds. No timing is asserted; what is: every request of both streams answered 200,
the finder's rate found in steps and the soak run at it, latency per window, the workers' memory read.

On PostgreSQL (``TEST_DATABASE_URL``) on a scratch database beside the test database (``<name>_soak``), else on a
SQLite file of its own."""

from __future__ import annotations

import os
from pathlib import Path

from tests.bench_runs import run_small


def test_authorize_and_finder_at_once(tmp_path: Path) -> None:
    test_database = os.environ.get("TEST_DATABASE_URL")
    database = f"{test_database}_soak" if test_database else f"sqlite:///{tmp_path / 'bench.sqlite3'}"
    figures = run_small("bench_soak.py", tmp_path, "--size", "small", "--database", database)
    entry = figures["soak"]["small"]
    assert entry["database"] == ("postgresql" if test_database else "sqlite")
    assert entry["errors"] == {"authorize": 0, "finder": 0} and entry["no_errors"] is True
    authorize, finder = entry["authorize"], entry["finder"]
    assert authorize["sent"] == authorize["answered"] == 120 and authorize["statuses"] == {"200": 120}
    assert finder["sent"] == finder["answered"] == int(entry["finder_rate_per_s"] * 4)
    assert set(finder["statuses"]) == {"200"}
    assert entry["finder_mean_results_per_query"] > 0  # the searches find charge points
    # The steps: each rate tried until one is not sustained; the soak runs at the last sustained one.
    steps = entry["finder_steps"]
    assert steps and steps[0]["finder_rate"] == 5
    sustained = [step["finder_rate"] for step in steps if step["sustained"]]
    assert entry["finder_rate_per_s"] == (sustained[-1] if sustained else 5)
    for stream in (authorize, finder):
        assert 0 < stream["p50_ms"] <= stream["p95_ms"] <= stream["p99_ms"] <= stream["max_ms"]
        assert [window["from_s"] for window in stream["per_window"]] == [0.0, 2.0]
        assert sum(window["answered"] for window in stream["per_window"]) == stream["answered"]
    if Path("/proc/self/status").exists():
        assert len(entry["worker_memory_mb_start"]) == len(entry["worker_memory_mb_end"]) == 2
