"""Load and batch together, at a small size (bench/bench_load_and_batch.py): authorizations at 30/s while CDRs are
imported over OCPI (rated by a Celery worker) and an invoice run finalizes, on gunicorn with 2 workers. No timing
is asserted; what is: every authorization answered 200 alone and during the batch work, every CDR answered,
stored once and rated, the run finalized with gapless numbers, no error in the worker's log, no deadlock.

On PostgreSQL (``TEST_DATABASE_URL``) it runs on a scratch database beside the test database (``<name>_load_batch``),
else on a SQLite file of its own. The Celery broker is Redis (``BENCH_BROKER_URL``, default database 7)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.bench_runs import run_small


def _database(tmp_path: Path) -> str:
    test_database = os.environ.get("TEST_DATABASE_URL")
    if test_database:
        return f"{test_database}_load_batch"
    return f"sqlite:///{tmp_path / 'bench.sqlite3'}"


def test_authorizations_during_an_import_and_an_invoice_run(tmp_path: Path) -> None:
    database = _database(tmp_path)
    figures = run_small(
        "bench_load_and_batch.py",
        tmp_path,
        *("--size", "small", "--database", database),
        *("--accounts", "12", "--run-cdrs", "60", "--import-cdrs", "300", "--baseline-seconds", "2"),
    )
    entry = figures["load_and_batch"]["small"]
    assert entry["database"] == ("postgresql" if database.startswith("postgresql") else "sqlite")
    assert entry["errors"] == {
        "authorize_alone": 0,
        "authorize_during_batch": 0,
        "import": 0,
        "rating": 0,
        "rating_worker_log": 0,
        "invoice_run": 0,
        "deadlocks": 0,
    }
    assert entry["no_errors"] is True
    alone, during = entry["authorize_alone"], entry["authorize_during_batch"]
    assert alone["answered"] == alone["sent"] == 60 and alone["statuses"] == {"200": 60}
    assert during["answered"] == during["sent"] > 0 and set(during["statuses"]) == {"200"}
    for measured in (alone, during):
        assert 0 < measured["p50_ms"] <= measured["p90_ms"] <= measured["p99_ms"] <= measured["max_ms"]
    assert entry["p99_ms_during_batch"] == during["p99_ms"] and entry["ratio_p99_during_batch_vs_alone"] > 0
    # Per window of the batch work: every authorization of the batch falls in the whole window, none failed.
    windows = during["windows"]
    assert windows["whole_batch"]["requests"] > 0 and all(window["errors"] == 0 for window in windows.values())
    assert (
        windows["both"]["requests"] + windows["invoice_run_only"]["requests"] + windows["import_only"]["requests"]
        <= windows["whole_batch"]["requests"]
    )
    imported = entry["import"]
    assert (imported["cdrs"], imported["stored"], imported["rated"]) == (300, 300, 300)
    assert sum(imported["statuses"].values()) == 300 and set(imported["statuses"]) <= {"200", "201"}
    run = entry["invoice_run"]
    assert run["status"] == "finalized" and run["failed"] == 0 and run["numbers_gapless"] is True
    assert run["invoices"] == run["done"] > 0
    assert entry["deadlocks"] == (0 if database.startswith("postgresql") else None)
