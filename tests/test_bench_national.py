"""The national-scale benchmark runs (its small size, every step, in a scratch database of its own on the suite's
PostgreSQL server): no timing is asserted, only that each step measured what it says with no error, that the
authorization answers are what the cards' states say, and that both runs numbered their invoices without a gap."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.bench_runs import run_small

TEST_URL = os.environ.get("TEST_DATABASE_URL") or ""

pytestmark = pytest.mark.skipif(
    not TEST_URL.startswith("postgresql"),
    reason="bench_national.py measures PostgreSQL only (COPY loads, table and index sizes, the run's row locks "
    "between worker processes): it runs in the suite's PostgreSQL pass",
)


@pytest.fixture
def scratch_url() -> Iterator[str]:
    """A database of the benchmark's own on the test server (it drops and migrates its schema), dropped after."""
    name = f"bench_national_{uuid.uuid4().hex[:8]}"
    server = TEST_URL.rsplit("/", 1)[0]
    yield f"{server}/{name}"
    admin = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_national_benchmark_runs_small(tmp_path: Path, scratch_url: str) -> None:
    figures = run_small("bench_national.py", tmp_path, "--size", "small", "--database", scratch_url)
    entry = figures["national"]["small"]
    steps = entry["steps"]
    assert set(steps) == {"generate", "rate", "history", "authorize", "run", "tokens", "sizes"}
    assert not any(step.get("skipped") is True or step.get("kept_from_earlier_run") for step in steps.values())
    assert entry["errors"] == 0 and [name for name, step in steps.items() if step["errors"]] == []
    assert all(step["step_s"] > 0 for step in steps.values())
    assert entry["meets_target"] == dict.fromkeys(
        ("authorize_p99_under_10_ms_at_300_per_s", "run_1m_accounts_under_15_min", "tokens_1_5m_under_90_s")
    )  # judged on the national size only
    assert entry["machine"]["cpu_count"] == os.cpu_count()

    rows = steps["generate"]["rows"]
    assert (rows["accounts"], rows["roaming_locations"], rows["roaming_cdrs"]) == (300, 200, 3000)
    assert 300 <= rows["cards"] <= 600 and entry["data_size"]["cards"] == rows["cards"]

    rate = steps["rate"]  # the last month, in 2 processes, after the service's own pass over 100 older CDRs
    assert rate["processes"] == 2 and rate["rated"] == rate["pending_in_month"] > 0 and rate["not_rated"] == 0
    assert rate["baseline"]["rated"] == 100 and rate["cdrs_per_s"] > 0 and rate["baseline"]["cdrs_per_s"] > 0

    history = steps["history"]["run"]
    assert steps["history"]["charges_written"] > 0
    for run in (history, steps["run"]):
        assert (run["status"], run["failed"], run["uninvoiced_sessions"]) == ("finalized", 0, 0)
        assert run["numbers_gapless"] and run["invoices"] == run["done"] > 0 and run["invoice_lines"] >= run["done"]
        assert run["pending_cdrs_rated_by_preview"] == 0
    assert steps["run"]["period"] > history["period"]
    # The monthly run's numbers follow the first run's in the same series: one block after the other.
    for series, numbers in steps["run"]["numbers"].items():
        first = int(numbers.split("..")[0])
        assert first == int(history["numbers"].get(series, "0..0").split("..")[1]) + 1

    authorize = steps["authorize"]
    assert authorize["statuses"] == {"200": authorize["requests"]} and authorize["answered"] == authorize["requests"]
    assert authorize["answers"] == authorize["answers_expected_from_card_states"]
    assert authorize["answers"]["ALLOWED"] > authorize["requests"] / 2  # most cards are active; some are not
    assert set(authorize["answers"]) > {"ALLOWED"}
    assert authorize["baseline_auth_only"]["statuses"] == {"404": authorize["baseline_auth_only"]["sent"]}
    assert 0 < authorize["p50_ms"] <= authorize["p99_ms"]

    tokens = steps["tokens"]
    assert [run["tokens"] for run in tokens["runs"]] == [tokens["tokens"]] and 0 < tokens["tokens"] <= rows["cards"]

    sizes = steps["sizes"]
    tables = {table["table"]: table for table in sizes["tables"]}
    assert tables["roaming_cdrs"]["rows"] == 3000 and tables["cards"]["rows"] == rows["cards"]
    assert sizes["database_mb"] > tables["roaming_cdrs"]["total_mb"] > 0 and sizes["largest_indexes"]
    assert [table["total_mb"] for table in sizes["tables"]] == sorted(
        (table["total_mb"] for table in sizes["tables"]), reverse=True
    )
