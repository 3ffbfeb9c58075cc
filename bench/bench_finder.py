"""Benchmark of the charger finder (app.finder) in-process: the nearest 20 locations within 10 km, with the
driver's prices, per query (issue 14 target: p95 under 8 ms in-process).

Data (``--size``):

* ``shared``: the 7,609 real Dutch locations and their 994 tariffs (data/ocpi-nl-10-cities), imported with the
  real importers;
* ``small`` (1,500), ``70k`` (70,000), ``1m`` (1,000,000): synthetic locations spread like the real data: each is a
  real location (its EVSEs, connectors and tariff ids, so prices are real) moved by a Gaussian of 1.5 km
  (deterministic seed). The real file is imported with the real importers first (their rows are the templates,
  sanitised as roaming stores them), then replaced by the copies written in bulk (``app.db_bulk``: COPY on
  PostgreSQL, executemany on SQLite; the spatial index follows by its triggers or GiST index), which takes
  minutes for ``1m`` rather than the importer's ~20 (the importer's speed is bench_locations.py's subject).

Queries: ``--queries`` points spread like the data (a real location moved by up to 5 km in each direction), each
``search_nearby(lat, lon, radius 10 km, limit 20)`` for a visitor (Pay-as-you-go prices). Before each measured
pass the same searches run on as many other points (a warm-up: the process's caches of tariff contents and
estimates are then as warm as in a worker that has served for a while, not cold as right after a deploy). The
floor, measured in the same call on the same points: a scipy KD-tree (cKDTree on unit vectors) answering the 20
nearest within 10 km, in-process, no database, no prices; the ratio finder / KD-tree is reported (these machines
are shared: ratios hold where absolute times drift). On PostgreSQL the finder is also measured with the plain
(latitude, longitude) B-tree instead of the earthdistance index (``FINDER_SPATIAL_INDEX=bbox``), to show why the
index is used. CPU time per query (``time.process_time``) is reported beside the wall time: the difference is
waiting (database server, or other processes on the machine: the load average is reported at the start and the
end), and so are the SQL statements per search.

The other searches, measured the same way on the first ``--other-queries`` of the points (``other_searches``):
the page after the first (through its cursor; only the second search is timed), two filtered searches (fast DC:
DC and at least 50 kW on one connector, a filter few locations pass; Type 2 available now, one most pass), and
cheapest first (``sort=price``: every location of the radius is priced, the order needs them all).

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_emsp python bench/bench_finder.py --size shared
    python bench/bench_finder.py --database sqlite:////tmp/finder.sqlite3 --size small --queries 200

The database is migrated if needed and its roaming tables are emptied first: never point this at data you want to
keep. Medians over ``--runs`` runs go to bench/results.json under "finder" → the size (read-modify-write), or to
``--results``.
"""

from __future__ import annotations

import os as _os
from pathlib import Path as _Path

# ../shared beside the checkout (as in CI), or EMSP_SHARED_DIR.
SHARED = _Path(_os.environ.get("EMSP_SHARED_DIR") or _Path(__file__).resolve().parents[2] / "shared")

import argparse
import datetime as dt
import gzip
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np
from flask_migrate import upgrade
from scipy.spatial import cKDTree
from scratch_database import ensure_database  # bench/ is the script's folder
from sqlalchemy import Float, cast, delete, event, func, select, text

from app import create_app
from app.db_bulk import insert_rows
from app.extensions import db
from app.finder.distance import EARTH_MEAN_RADIUS_KM
from app.finder.filters import Current, Filters
from app.finder.prices import forget_cached_prices
from app.finder.queries import NearbyQuery, SortOrder
from app.finder.services import search_nearby
from app.finder.spatial import forget_spatial_index, spatial_index
from app.plans.services import seed_default_plans
from app.roaming.models import Connector, Evse, Location, TariffVersion
from app.roaming.receive.importers import import_locations, import_tariffs

LOCATIONS = SHARED / "data/ocpi-nl-10-cities/locations.json.gz"
TARIFFS = SHARED / "data/ocpi-nl-10-cities/tariffs.json.gz"
RESULTS = ROOT / "bench" / "results.json"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_emsp"
SIZES = {"small": 1_500, "shared": None, "70k": 70_000, "1m": 1_000_000}
RADIUS_KM = 10.0
LIMIT = 20
TARGET_P95_MS = 8.0
SPREAD_KM = 1.5  # synthetic locations: a real one moved by a Gaussian of this many km
QUERY_JITTER_DEG = (0.045, 0.07)  # query points: a real location moved by up to ~5 km


def empty_locations() -> None:
    """Delete every location, EVSE and connector. On PostgreSQL by TRUNCATE: a million deleted rows would stay in
    the tables and the spatial index until autovacuum came by, and the next run's walks would step over them."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("TRUNCATE roaming_connectors, roaming_evses, roaming_locations"))
        return
    # Children first: SQLite's DELETE does not cascade without the ORM, and the R*Tree follows by its trigger.
    for model in (Connector, Evse, Location):
        db.session.execute(delete(model))


def empty_tables() -> None:
    empty_locations()
    db.session.execute(delete(TariffVersion))  # referenced by other tables (sessions, charges): deleted
    db.session.commit()


_CHUNK = 20_000  # locations written per bulk insert


def _templates() -> list[tuple[dict[str, Any], list[tuple[dict[str, Any], list[dict[str, Any]]]]]]:
    """Every stored location as it was imported, with its EVSEs and their connectors (plain column values)."""
    by_location: dict[int, list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
    by_evse: dict[int, list[dict[str, Any]]] = {}
    locations = [dict(row._mapping) for row in db.session.execute(select(Location.__table__).order_by(Location.id))]
    for row in db.session.execute(select(Evse.__table__).order_by(Evse.id)):
        evse = dict(row._mapping)
        connectors: list[dict[str, Any]] = []
        by_evse[evse["id"]] = connectors
        by_location.setdefault(evse["location_id"], []).append((evse, connectors))
    for row in db.session.execute(select(Connector.__table__).order_by(Connector.id)):
        connector = dict(row._mapping)
        by_evse[connector["evse_id"]].append(connector)
    return [(location, by_location.get(location["id"], [])) for location in locations]


def write_synthetic(count: int, seed: int) -> int:
    """Replace the stored locations by ``count`` copies of them, each moved by a Gaussian of SPREAD_KM, in bulk;
    the number of EVSEs written."""
    templates = _templates()
    empty_locations()
    rng = random.Random(seed)
    location_id = evse_id = connector_id = 0
    evses_written = 0
    for start in range(0, count, _CHUNK):
        location_rows, evse_rows, connector_rows = [], [], []
        for number in range(start, min(count, start + _CHUNK)):
            template, evses = rng.choice(templates)
            lat = float(template["latitude"]) + rng.gauss(0, SPREAD_KM / 111.2)
            lon = float(template["longitude"]) + rng.gauss(0, SPREAD_KM / 68.5)
            coordinates = {"latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}"}
            location_id += 1
            ocpi_id = f"SYN{number}"
            location_rows.append(
                {
                    **template,
                    "id": location_id,
                    "ocpi_id": ocpi_id,
                    "ocpi_id_key": ocpi_id,
                    "latitude": Decimal(coordinates["latitude"]),
                    "longitude": Decimal(coordinates["longitude"]),
                    "data": {**template["data"], "id": ocpi_id, "coordinates": coordinates},
                }
            )
            for evse, connectors in evses:
                evse_id += 1
                evse_rows.append({**evse, "id": evse_id, "location_id": location_id})
                for connector in connectors:
                    connector_id += 1
                    connector_rows.append({**connector, "id": connector_id, "evse_id": evse_id})
        insert_rows(Location.__table__, location_rows)
        insert_rows(Evse.__table__, evse_rows)
        insert_rows(Connector.__table__, connector_rows)
        evses_written += len(evse_rows)
        db.session.commit()
    if db.session.get_bind().dialect.name == "postgresql":
        for model in (Location, Evse, Connector):  # the ids were ours: the sequences go on after them
            db.session.execute(
                text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :last)"),
                {"table": model.__table__.name, "last": db.session.scalar(select(func.max(model.id)))},
            )
        db.session.commit()
    return evses_written


def load(size: str) -> dict[str, Any]:
    """Empty the tables, store the data of ``size``; what was stored and how long it took."""
    empty_tables()
    real = json.loads(gzip.decompress(LOCATIONS.read_bytes()))
    started = time.perf_counter()
    report = import_locations(LOCATIONS, batch_size=1000)
    import_s = time.perf_counter() - started
    tariffs = import_tariffs(TARIFFS)
    seed_default_plans()
    db.session.commit()
    figures: dict[str, Any] = {"import_s": round(import_s, 2), "import_failed": report.failed}
    if SIZES[size] is None:
        figures["n_locations"] = report.stored
        figures["n_evses"] = sum(len(o.get("evses", [])) for o in real)
    else:
        started = time.perf_counter()
        figures["n_evses"] = write_synthetic(SIZES[size], seed=14)
        figures["bulk_write_s"] = round(time.perf_counter() - started, 2)
        figures["n_locations"] = SIZES[size]
    if db.session.get_bind().dialect.name == "postgresql":
        # Fresh tables have no statistics until autovacuum comes by; a live database has them. Without them the
        # planner guesses ~200 EVSEs per location and hash-joins every connector.
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    return {**figures, "n_tariffs": tariffs.stored, "real": real}


def query_points(real: list[dict[str, Any]], count: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    points = []
    for _ in range(count):
        obj = rng.choice(real)
        points.append(
            (
                float(obj["coordinates"]["latitude"]) + rng.uniform(-QUERY_JITTER_DEG[0], QUERY_JITTER_DEG[0]),
                float(obj["coordinates"]["longitude"]) + rng.uniform(-QUERY_JITTER_DEG[1], QUERY_JITTER_DEG[1]),
            )
        )
    return points


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]

    return {
        "p50_ms": round(at(0.50) * 1000, 3),
        "p95_ms": round(at(0.95) * 1000, 3),
        "p99_ms": round(at(0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


class Statements:
    """Counts the SQL statements the app's engine runs."""

    def __init__(self) -> None:
        self.count = 0
        event.listen(db.engine, "before_cursor_execute", self._count)

    def _count(self, *_: object) -> None:
        self.count += 1


QueryOf = Callable[[float, float, str | None], NearbyQuery]


def nearest_first(lat: float, lon: float, cursor: str | None) -> NearbyQuery:
    return NearbyQuery(lat, lon, radius_km=RADIUS_KM, limit=LIMIT, cursor=cursor)


def _search(**options: Any) -> QueryOf:
    """Nearest 20 within the radius, as :func:`nearest_first`, with these filters or this order."""
    return lambda lat, lon, cursor: NearbyQuery(lat, lon, radius_km=RADIUS_KM, limit=LIMIT, cursor=cursor, **options)


SEARCHES: dict[str, tuple[QueryOf, bool]] = {
    # name: (the query, whether the page after the first is the one timed)
    "next_page": (nearest_first, True),
    "fast_dc": (_search(filters=Filters(current=Current.DC, min_power_kw=Decimal(50))), False),
    "type2_available": (
        _search(filters=Filters(connector_types=frozenset({"IEC_62196_T2"}), available_now=True)),
        False,
    ),
    "cheapest_first": (_search(sort=SortOrder.PRICE), False),
}


def run_finder(
    points: list[tuple[float, float]],
    warm: list[tuple[float, float]],
    statements: Statements,
    query_of: QueryOf = nearest_first,
    second_page: bool = False,
) -> dict[str, Any]:
    """The finder on ``points`` after a pass on ``warm``: wall and CPU percentiles, the mean number of results
    and of SQL statements per timed search. ``second_page``: the page after the first is the one timed."""

    def search(lat: float, lon: float) -> tuple[float, float, int, int]:
        cursor = None
        if second_page:
            cursor = search_nearby(query_of(lat, lon, None)).next_cursor
            if cursor is None:  # a single page here: nothing to time
                db.session.rollback()
                return (-1.0, -1.0, 0, 0)
        before = statements.count
        started, started_cpu = time.perf_counter(), time.process_time()
        page = search_nearby(query_of(lat, lon, cursor))
        wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        db.session.rollback()  # one request, one transaction
        return wall, cpu, len(page.items), statements.count - before

    for lat, lon in warm:
        search(lat, lon)
    timed = [figures for figures in (search(lat, lon) for lat, lon in points) if figures[0] >= 0]
    return {
        "wall": percentiles([figures[0] for figures in timed]),
        "cpu": percentiles([figures[1] for figures in timed]),
        "results": sum(figures[2] for figures in timed) / len(timed),
        "statements": sum(figures[3] for figures in timed) / len(timed),
        "searches": len(timed),
    }


def unit_vectors(coordinates: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(coordinates[:, 0]), np.radians(coordinates[:, 1])
    return np.column_stack((np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)))


def run_kdtree(points: list[tuple[float, float]]) -> tuple[dict[str, float], float]:
    """The floor: the 20 nearest within 10 km from a KD-tree on the same locations, in-process."""
    rows = db.session.execute(select(cast(Location.latitude, Float), cast(Location.longitude, Float))).all()
    tree = cKDTree(unit_vectors(np.array(rows, dtype=float)))
    chord = 2 * math.sin(RADIUS_KM / EARTH_MEAN_RADIUS_KM / 2)
    queries = unit_vectors(np.array(points, dtype=float))
    for vector in queries[:20]:
        tree.query(vector, k=LIMIT, distance_upper_bound=chord)
    wall, found = [], 0
    for vector in queries:
        started = time.perf_counter()
        distances, _ = tree.query(vector, k=LIMIT, distance_upper_bound=chord)
        wall.append(time.perf_counter() - started)
        found += int(np.isfinite(distances).sum())
    return percentiles(wall), found / len(points)


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0]}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One of the other searches over the runs: wall and CPU medians, results and statements per search."""
    return {
        "wall": median_of([run["wall"] for run in runs]),
        "cpu": median_of([run["cpu"] for run in runs]),
        "mean_results": round(statistics.median(run["results"] for run in runs), 2),
        "statements_per_search": round(statistics.median(run["statements"] for run in runs), 2),
        "searches_timed": min(run["searches"] for run in runs),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="shared")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--other-queries",
        type=int,
        default=None,
        help="points per run for each of the other searches (default: --queries; 0: not measured). Cheapest first "
        "prices every location of the radius: at 1m that is ~100,000 locations a search",
    )
    args = parser.parse_args(argv)
    if args.database.startswith("postgresql"):
        ensure_database(args.database)
    app = create_app("development", SQLALCHEMY_DATABASE_URI=args.database)
    with app.app_context():
        upgrade()
        forget_spatial_index()
        forget_cached_prices()
        data = load(args.size)
        real = data.pop("real")
        index = spatial_index().value
        postgres = db.session.get_bind().dialect.name == "postgresql"
        statements = Statements()
        load_at_start = round(os.getloadavg()[0], 2)
        figures: dict[str, list[dict[str, Any]]] = {"finder": [], "kdtree": [], "bbox": []}
        others: dict[str, list[dict[str, Any]]] = {name: [] for name in SEARCHES}
        for run in range(args.runs):
            points = query_points(real, args.queries, seed=run)
            warm = query_points(real, args.queries, seed=1000 + run)
            figures["finder"].append(run_finder(points, warm, statements))
            figures["kdtree"].append({"wall": run_kdtree(points)[0]})
            if postgres:
                app.config["FINDER_SPATIAL_INDEX"] = "bbox"
                figures["bbox"].append(run_finder(points, warm, statements))
                app.config["FINDER_SPATIAL_INDEX"] = "auto"
            other_count = args.queries if args.other_queries is None else args.other_queries
            for name, (query_of, second_page) in SEARCHES.items() if other_count else ():
                others[name].append(
                    run_finder(points[:other_count], warm[:other_count], statements, query_of, second_page)
                )
            print(
                f"run {run + 1}: finder {figures['finder'][-1]['wall']} cpu {figures['finder'][-1]['cpu']} "
                f"kdtree {figures['kdtree'][-1]['wall']} load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        finder = median_of([run["wall"] for run in figures["finder"]])
        finder_cpu = median_of([run["cpu"] for run in figures["finder"]])
        kdtree = median_of([run["wall"] for run in figures["kdtree"]])
        entry: dict[str, Any] = {
            **data,
            "database": db.session.get_bind().dialect.name,
            "spatial_index": index,
            "queries_per_run": args.queries,
            "runs": args.runs,
            "radius_km": RADIUS_KM,
            "limit": LIMIT,
            "mean_results_per_query": round(figures["finder"][-1]["results"], 2),
            "statements_per_search": round(statistics.median(run["statements"] for run in figures["finder"]), 2),
            "finder": finder,
            "finder_cpu": finder_cpu,
            "finder_cpu_p50_ms": finder_cpu["p50_ms"],
            "kdtree": kdtree,
            "ratio_finder_vs_kdtree_p50": round(finder["p50_ms"] / kdtree["p50_ms"], 1),
            "ratio_finder_vs_kdtree_p95": round(finder["p95_ms"] / kdtree["p95_ms"], 1),
            "ratio_finder_cpu_vs_kdtree_p95": round(finder_cpu["p95_ms"] / kdtree["p95_ms"], 1),
            "other_searches": {name: _summary(runs) for name, runs in others.items() if runs},
            "target_p95_ms": TARGET_P95_MS,
            "meets_target": finder["p95_ms"] < TARGET_P95_MS,
            "python": platform.python_version(),
            "load_average_1m_at_start": load_at_start,
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
            "unit": "milliseconds per query, in-process, median over runs",
            "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if figures["bbox"]:
            bbox = median_of([run["wall"] for run in figures["bbox"]])
            entry["finder_with_lat_lon_btree"] = bbox
            entry["ratio_btree_vs_index_p95"] = round(bbox["p95_ms"] / finder["p95_ms"], 2)
        db.session.execute(text("SELECT 1"))  # the connection is alive to the end (a failed run says so here)
        empty_tables()
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    results.setdefault("finder", {})[args.size] = entry
    args.results.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(entry, indent=2))
    return entry


if __name__ == "__main__":
    main()
