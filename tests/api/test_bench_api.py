"""The API benchmark runs (its small size, on a SQLite file of its own, gunicorn on loopback): no timing is
asserted here, only that it measures what it says on the data it says and keeps the other benchmarks' figures."""

from __future__ import annotations

from pathlib import Path

from tests.bench_runs import run_small


def test_the_api_benchmark_runs_small(tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path / 'bench.sqlite3'}"
    figures = run_small("bench_api.py", tmp_path, "--size", "small", "--database", sqlite, "--duration", "2")
    entry = figures["api"]
    assert (entry["size"], entry["accounts"], entry["charging_accounts"], entry["database"]) == (
        "small",
        500,
        5,
        "sqlite",
    )
    # Every request of the load was answered, and answered 200 (a refused token would show as 401 here).
    assert entry["errors"] == 0 and entry["requests"] == int(entry["rate_per_s"] * entry["duration_s"])
    assert entry["runs"] == 1 and len(entry["runs_p50_p99_ms"]) == 1
    assert set(entry["statuses"]) == {"/api/v1/sessions/active 200", "/api/v1/cards 200"}
    for measured in (entry, *entry["by_path"].values()):
        assert 0 < measured["p50_ms"] <= measured["p90_ms"] <= measured["p99_ms"] <= measured["max_ms"]
    assert entry["token_check_median_ms"] > 0 and entry["argon2_verify_median_ms"] > 0
    assert entry["ratio_argon2_vs_token_check"] > 1
    assert isinstance(entry["meets_target"], bool) and isinstance(entry["token_check_meets_target"], bool)
    # What a request cost: in-process through the whole WSGI stack, the server's CPU under load, the generator's.
    assert set(entry["cpu_ms_per_request_in_process"]) == {
        "status",
        "cards",
        "sessions_active",
        "sessions_active_charging",
    }
    assert all(value > 0 for value in entry["cpu_ms_per_request_in_process"].values())
    assert entry["server_cpu_ms_per_request"]["workers"] > 0
    assert entry["load_generator_cpu_ms_per_request"] > 0
