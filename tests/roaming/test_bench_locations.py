"""The Locations importer's benchmark runs (its small size, on a SQLite file of its own): no timing is asserted
here, only that it measures what it says on the data it says."""

from __future__ import annotations

from tests.bench_runs import run_small


def test_the_benchmark_runs_small(tmp_path):
    figures = run_small(
        "bench_locations.py",
        tmp_path,
        "--size",
        "small",
        "--database",
        f"sqlite:///{tmp_path / 'bench.sqlite3'}",
        "--runs",
        "1",
        "--baseline-slice",
        "40",
        before={"other": {"kept": True}, "locations": {"70k": {"kept": True}}},
    )
    assert figures["locations"]["70k"] == {"kept": True}  # and the other sizes
    entry = figures["locations"]["small"]
    assert (entry["n_locations"], entry["database"], entry["runs"]) == (300, "sqlite", 1)
    assert entry["n_evses"] >= 300 and entry["n_connectors"] >= entry["n_evses"]
    for name in ("import_s", "reimport_s", "import_one_process_s", "per_object_path_per_1000_s"):
        assert entry[name] > 0, name
    for name in ("import_cpu_s", "reimport_cpu_s", "import_one_process_cpu_s"):
        assert entry[name] >= 0, name
    assert entry["ratio_per_object_vs_import"] > 0 and entry["ratio_import_vs_reimport"] > 0
    assert "pull_s" not in entry and "meets_target" not in entry  # the pull and the targets: other sizes
