"""The stale-plan benchmark (bench/bench_stale_plans.py) at its small size: 300 locations imported into a fresh
database twice, once as the importer was before it refreshed the planner statistics and once as it is, finder
searches before and after. No timing is asserted; what is: both ways import the same locations, every search after
the refreshed import is answered (none reaches the statement time-out), the figures and the ratio are written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bench_runs import run_small

TEST_DATABASE = os.environ.get("TEST_DATABASE_URL", "")


@pytest.mark.skipif(
    not TEST_DATABASE.startswith("postgresql"),
    reason="prepared plans and planner statistics are PostgreSQL's; SQLite plans every statement afresh",
)
def test_the_searches_after_a_first_feed_with_and_without_the_refresh(tmp_path: Path) -> None:
    figures = run_small(
        "bench_stale_plans.py", tmp_path, "--size", "small", "--database", f"{TEST_DATABASE}_plans", "--searches", "3"
    )
    entry = figures["stale_plans"]["small"]
    with_refresh, without = entry["with_refresh"], entry["without_refresh"]
    assert with_refresh["imported"] == without["imported"] == entry["data_size"]["locations"] == 300
    assert with_refresh["searches"] == without["searches"] == 3
    assert with_refresh["timed_out"] == 0 and entry["meets_target"] is True
    assert 0 < with_refresh["median_ms"] <= with_refresh["max_ms"]
    assert entry["ratio_without_vs_with"] == round(without["median_ms"] / with_refresh["median_ms"], 1)
