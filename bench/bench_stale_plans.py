"""A first location feed, and the finder's prepared plans (PostgreSQL): what refreshing the statistics saves.

psycopg prepares a statement run five times on a connection, and PostgreSQL keeps the generic plan it then made
for the tables' size until their statistics change. A new e-MSP's finder is searched while the location tables are
empty; then the first feed arrives. This measures, for each way, in a fresh database of its own:

* ``without_refresh``: the importer as it was before session 9 (no ``ANALYZE`` during or after the import);
* ``with_refresh``: the importer as it is (``app.db_bulk.refresh_grown_statistics`` after each batch,
  ``refresh_statistics`` at the end);

10 rounds of nearest-20 searches (10 km) around Groningen, Zwolle and Breda on the empty tables (the plans are
made), then ``import_locations`` of the shared NDW file (``--size shared``: 7,609 locations; ``small``: its first
300, what the test suite runs), then ``--searches`` searches around the same places, each with a statement
time-out of ``--timeout`` seconds (a search that reaches it counts as timed out, its time as the time-out).
Medians and the ratio without/with.

    .venv/bin/python bench/bench_stale_plans.py --database postgresql+psycopg://postgres@127.0.0.1:5432/bench_plans

The database named and ``<name>_without`` (created when missing) have their schema dropped and built again.
Figures go to bench/results.json under "stale_plans" → the size.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
RESULTS = HERE / "results.json"

from ocpi_bench_common import write_sized_result

SHARED = Path(os.environ.get("EMSP_SHARED_DIR") or ROOT.parent / "shared")
LOCATIONS_FILE = SHARED / "data" / "ocpi-nl-10-cities" / "locations.json.gz"
SIZES: dict[str, int | None] = {"shared": None, "small": 300}  # locations imported (None: the whole file)
PLACES = ((53.2194, 6.5665), (52.5168, 6.0830), (51.5719, 4.7683))  # Groningen, Zwolle, Breda
WARM_ROUNDS = 10  # searches per place on the empty tables: psycopg prepares at 5, PostgreSQL goes generic after 5


def _measure(database: str, refresh: bool, file: Path, searches: int, timeout_s: float) -> dict[str, Any]:
    """One way, in a fresh ``database``: the plans made on empty tables, the import, the searches after it."""
    from flask_migrate import upgrade
    from scratch_database import ensure_database
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    import app.roaming.receive.importers as importers
    from app import create_app
    from app.extensions import db
    from app.finder.queries import NearbyQuery
    from app.finder.services import search_nearby

    ensure_database(database)
    app = create_app("development", SQLALCHEMY_DATABASE_URI=database, SERVER_NAME=None, CELERY_BROKER_URL=None)
    saved = importers.refresh_grown_statistics, importers.refresh_statistics
    if not refresh:  # the importer before session 9
        importers.refresh_grown_statistics = lambda tables, at_least=1_000: []  # type: ignore[assignment]
        importers.refresh_statistics = lambda tables: None  # type: ignore[assignment]
    try:
        with app.app_context():
            with db.engine.begin() as connection:  # a new installation: fresh tables, no statistics kept
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
            upgrade()
            db.session.execute(text("ANALYZE"))  # a new installation: every table analysed while empty
            db.session.commit()

            def search(lat: float, lon: float) -> tuple[float, int | None]:
                started = time.perf_counter()
                try:
                    db.session.execute(
                        text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(int(timeout_s * 1000))}
                    )
                    page = search_nearby(NearbyQuery(lat=lat, lon=lon, radius_km=10, limit=20))
                    db.session.commit()
                except OperationalError:  # the statement time-out (QueryCanceled)
                    db.session.rollback()
                    return timeout_s * 1000, None
                return (time.perf_counter() - started) * 1000, len(page.items)

            for _ in range(WARM_ROUNDS):
                for lat, lon in PLACES:
                    search(lat, lon)
            started = time.perf_counter()
            report = importers.import_locations(file)
            import_s = time.perf_counter() - started
            times, found = [], []
            for index in range(searches):
                elapsed, items = search(*PLACES[index % len(PLACES)])
                times.append(elapsed)
                found.append(items)
            db.engine.dispose()
    finally:
        importers.refresh_grown_statistics, importers.refresh_statistics = saved
    timed_out = sum(1 for items in found if items is None)
    answered = [items for items in found if items is not None]
    return {
        "imported": report.stored,
        "import_s": round(import_s, 2),
        "searches": searches,
        "timed_out": timed_out,
        "median_ms": round(statistics.median(times), 2),
        "max_ms": round(max(times), 2),
        "mean_results": round(sum(answered) / len(answered), 1) if answered else None,
    }


def _file(size: str, workdir: Path) -> Path:
    count = SIZES[size]
    if count is None:
        return LOCATIONS_FILE
    objects = json.loads(gzip.decompress(LOCATIONS_FILE.read_bytes()))[:count]
    path = workdir / f"locations-{count}.json.gz"
    path.write_bytes(gzip.compress(json.dumps(objects).encode()))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="shared")
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "BENCH_DATABASE_URL",
            os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_plans"),
        ),
    )
    parser.add_argument("--searches", type=int, default=9)
    parser.add_argument("--timeout", type=float, default=30.0, help="statement time-out of a search, seconds")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not args.database.startswith("postgresql"):
        raise SystemExit("prepared plans and their statistics are PostgreSQL's: give a postgresql+psycopg URL")
    with tempfile.TemporaryDirectory() as workdir:
        file = _file(args.size, Path(workdir))
        without = _measure(args.database + "_without", False, file, args.searches, args.timeout)
        print("without refresh", without, flush=True)
        with_refresh = _measure(args.database, True, file, args.searches, args.timeout)
        print("with refresh", with_refresh, flush=True)
    entry = {
        "size": args.size,
        "database": "postgresql",
        "data_size": {"locations": with_refresh["imported"]},
        "statement_timeout_s": args.timeout,
        "without_refresh": without,
        "with_refresh": with_refresh,
        "median_ms": with_refresh["median_ms"],
        "baseline_median_ms": without["median_ms"],
        "ratio_without_vs_with": round(without["median_ms"] / with_refresh["median_ms"], 1)
        if with_refresh["median_ms"]
        else None,
        "meets_target": with_refresh["timed_out"] == 0,
        "note": "a timed-out search counts as the statement time-out: without the refresh the figure is a floor",
    }
    write_sized_result(args.results, "stale_plans", args.size, entry)
    print(json.dumps({key: entry[key] for key in ("median_ms", "baseline_median_ms", "ratio_without_vs_with")}))


if __name__ == "__main__":
    main()
