"""The finder's benchmark runs (its small size, on a SQLite file of its own): no timing is asserted here, only
that it measures what it says on the data it says."""

from __future__ import annotations

from tests.bench_runs import run_small


def test_the_benchmark_runs_small(tmp_path):
    sqlite = f"sqlite:///{tmp_path / 'bench.sqlite3'}"
    figures = run_small(
        *("bench_finder.py", tmp_path, "--size", "small", "--database", sqlite),
        *("--queries", "30", "--runs", "1", "--other-queries", "10"),
    )
    entry = figures["finder"]["small"]
    assert (entry["n_locations"], entry["import_failed"], entry["n_tariffs"]) == (1500, 0, 994)
    assert entry["n_evses"] > 1500 and entry["bulk_write_s"] > 0  # the copies, written in bulk
    assert entry["database"] == "sqlite" and entry["spatial_index"] == "rtree"
    assert entry["queries_per_run"] == 30 and entry["runs"] == 1
    assert 0 < entry["mean_results_per_query"] <= 20
    for measured in (entry["finder"], entry["kdtree"]):
        assert set(measured) == {"p50_ms", "p95_ms", "p99_ms", "mean_ms"}
        assert 0 < measured["p50_ms"] <= measured["p95_ms"] <= measured["p99_ms"]
    assert entry["ratio_finder_vs_kdtree_p95"] > 0 and isinstance(entry["meets_target"], bool)
    assert entry["statements_per_search"] > 0 and entry["finder_cpu"]["p50_ms"] > 0
    assert set(entry["other_searches"]) == {"next_page", "fast_dc", "type2_available", "cheapest_first"}
    for name, other in entry["other_searches"].items():
        assert other["searches_timed"] > 0 and other["statements_per_search"] > 0, name
        assert 0 < other["wall"]["p50_ms"] <= other["wall"]["p95_ms"], name


def test_the_http_benchmark_runs_small(tmp_path):
    """bench_finder_http.py at its smallest: gunicorn (2 workers) on a SQLite file, a few requests per phase."""
    figures = run_small(
        "bench_finder_http.py",
        tmp_path,
        *("--size", "small", "--database", f"sqlite:///{tmp_path / 'http.sqlite3'}"),
        *("--requests", "20", "--clients", "2", "--seconds", "1", "--runs", "1"),
    )
    entry = figures["finder_http"]["small"]
    assert (entry["n_locations"], entry["import_failed"], entry["n_tariffs"]) == (1500, 0, 994)
    assert entry["database"] == "sqlite" and entry["requests_per_run"] == 20
    assert 0 < entry["mean_results_per_query"] <= 20 and entry["requests_per_s"] > 0
    for measured in (entry["http_one_client"], entry["http_under_load"], entry["kdtree"]):
        assert 0 < measured["p50_ms"] <= measured["p95_ms"] <= measured["p99_ms"]
    assert entry["ratio_http_vs_kdtree_p95"] > 0 and isinstance(entry["meets_target"], bool)
