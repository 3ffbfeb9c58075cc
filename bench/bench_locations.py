"""Benchmark of the Locations importer (and, on the shared data, the pull client): issue 4 and issue 14 targets.

Data (``--size``):

* ``shared``: the NDW snapshot, 7,609 OCPI Locations (18,970 EVSEs, 19,052 connectors); the pull is measured too;
* ``70k`` (70,000 locations, ~175,000 EVSEs; issue 14: import under 60 s) and ``small`` (300, what the test suite
  runs): synthetic locations spread like the real data (:func:`synthetic`: a real location with its EVSEs and
  connectors, moved by a Gaussian of 1.5 km, id ``SYN<n>``), written to a gzipped file first.

Measured in one call, each ``--runs`` times on emptied roaming tables, medians reported:

* ``import_s``: ``import_locations(file)`` into empty tables, as ``flask roaming import-locations`` runs it
  (validation in worker processes ahead of the writer when the file has several batches);
* ``import_one_process_s``: the same with ``workers=0`` (validation and writes in one process);
* ``reimport_s``: the same file again: every location compared, nothing written (the idempotent path);
* ``pull_s`` (``shared`` only): ``pull(partner, "locations")`` of the same objects from the fake OCPI CPO of the
  tests, a real HTTP server on loopback, 100 objects per page;
* the baseline, ``per_object_path_per_1000_s``: the Receiver's per-object path (``upsert_location`` through the
  ORM, a commit per object, as that many PUTs would do) on the first ``--baseline-slice`` locations, per 1,000
  locations, and ``ratio_per_object_vs_import`` = per-object time / import time, per location.

Wall time is what the targets speak of; CPU seconds of this process and its workers are given beside it, and the
load average, because the machine is shared (a loaded machine stretches wall time, not CPU time).

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_emsp python bench/bench_locations.py --size 70k
    python bench/bench_locations.py --size small --database sqlite:////tmp/locations.sqlite3 --runs 1

The database is migrated if needed and its roaming tables are emptied: never point this at data you want to keep.
Figures go to bench/results.json under "locations" → the size (read-modify-write), or to ``--results``.
"""

from __future__ import annotations

import os as _os
from pathlib import Path as _Path

# ../shared beside the checkout (as in CI), or EMSP_SHARED_DIR.
SHARED = _Path(_os.environ.get("EMSP_SHARED_DIR") or _Path(__file__).resolve().parents[2] / "shared")

import argparse
import copy
import datetime as dt
import gzip
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade
from scratch_database import ensure_database  # bench/ is the script's folder
from sqlalchemy import delete, text

from app import create_app
from app.extensions import db
from app.roaming.models import Connector, Evse, Location, Partner, PartnerStatus, PullCursor
from app.roaming.receive.importers import import_locations
from app.roaming.receive.locations import upsert_location
from app.roaming.receive.pull import pull
from tests.roaming.fake_cpo import start_fake_cpo
from tests.roaming.fake_cpo.sender import sender_endpoints

DATA = SHARED / "data/ocpi-nl-10-cities/locations.json.gz"
RESULTS = ROOT / "bench" / "results.json"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_emsp"
SIZES = {"small": 300, "shared": None, "70k": 70_000}
TARGET_S = {"shared": 30.0, "70k": 60.0}
BATCH_SIZE = 1000  # as bench_finder imports; the command's default is 500
BENCH_TOKEN = "bench-token"  # noqa: S105  (a loopback test server, not a secret)
SPREAD_KM = 1.5  # synthetic locations: a real one moved by a Gaussian of this many km (as bench_finder's)


def empty_roaming_tables() -> None:
    # Children first: SQLite's DELETE does not cascade without the ORM; the finder's R*Tree follows by trigger.
    for model in (Connector, Evse, Location, PullCursor):
        db.session.execute(delete(model))
    db.session.commit()


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the validation workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(work: Callable[[], Any]) -> tuple[float, float, Any]:
    started, started_cpu = time.perf_counter(), cpu_seconds()
    outcome = work()
    return time.perf_counter() - started, cpu_seconds() - started_cpu, outcome


def bench_partner(cpo: Any) -> Partner:
    partner = db.session.query(Partner).filter_by(name="bench NDW hub").one_or_none()
    if partner is None:
        partner = Partner(
            name="bench NDW hub",
            country_code="NL",
            party_id="BNH",
            is_hub=True,
            status=PartnerStatus.REGISTERED,
            outgoing_token=BENCH_TOKEN,
        )
        db.session.add(partner)
    partner.endpoints = sender_endpoints(cpo)
    db.session.commit()
    return partner


def synthetic(real: list[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` locations spread like the real ones: each a copy of a random real location (its EVSEs, connectors
    and tariff ids) moved by a Gaussian of SPREAD_KM, with its own id."""
    rng = random.Random(seed)
    out = []
    for number in range(count):
        obj = copy.deepcopy(rng.choice(real))
        lat = float(obj["coordinates"]["latitude"]) + rng.gauss(0, SPREAD_KM / 111.2)
        lon = float(obj["coordinates"]["longitude"]) + rng.gauss(0, SPREAD_KM / 68.5)
        obj["id"] = f"SYN{number}"
        obj["coordinates"] = {"latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}"}
        out.append(obj)
    return out


def data_file(size: str, workdir: Path) -> tuple[Path, list[dict[str, Any]]]:
    real = json.loads(gzip.decompress(DATA.read_bytes()))
    count = SIZES[size]
    if count is None:
        return DATA, real
    objects = synthetic(real, count, seed=14)
    path = workdir / f"synthetic-{size}.json.gz"
    path.write_bytes(gzip.compress(json.dumps(objects).encode(), compresslevel=1))
    return path, objects


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="shared")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-slice", type=int, default=1000, help="locations through the per-object path")
    parser.add_argument("--page-limit", type=int, default=100)
    parser.add_argument("--database", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.database.startswith("postgresql"):
        ensure_database(args.database)
    app = create_app("development", SQLALCHEMY_DATABASE_URI=args.database)
    figures: dict[str, list[float]] = {}

    def record(name: str, wall: float, cpu: float | None = None) -> None:
        figures.setdefault(name, []).append(wall)
        if cpu is not None:
            figures.setdefault(name[: -len("_s")] + "_cpu_s", []).append(cpu)

    with tempfile.TemporaryDirectory() as workdir, app.app_context():
        upgrade()
        path, objects = data_file(args.size, Path(workdir))
        baseline_slice = min(args.baseline_slice, len(objects))
        running = None
        if SIZES[args.size] is None:
            running = start_fake_cpo()
            running.cpo.accepted_tokens.add(BENCH_TOKEN)
            running.cpo.data["locations"] = objects
        try:
            for run in range(args.runs):
                empty_roaming_tables()
                wall, cpu, report = timed(lambda: import_locations(path, batch_size=BATCH_SIZE))
                assert (report.stored, report.failed) == (len(objects), 0), report
                record("import_s", wall, cpu)
                wall, cpu, again = timed(lambda: import_locations(path, batch_size=BATCH_SIZE))
                assert (again.stored, again.unchanged) == (len(objects), len(objects)), again
                record("reimport_s", wall, cpu)
                empty_roaming_tables()
                wall, cpu, _ = timed(lambda: import_locations(path, batch_size=BATCH_SIZE, workers=0))
                record("import_one_process_s", wall, cpu)
                if running is not None:
                    empty_roaming_tables()
                    partner = bench_partner(running.cpo)
                    wall, _, pulled = timed(lambda partner=partner: pull(partner, "locations", limit=args.page_limit))
                    assert pulled.stored == len(objects), pulled
                    record("pull_s", wall)
                empty_roaming_tables()

                def per_object() -> None:
                    for obj in objects[:baseline_slice]:
                        upsert_location(obj, partner=None, country_code=obj["country_code"], party_id=obj["party_id"])
                        db.session.commit()

                wall, _, _ = timed(per_object)
                record("per_object_path_per_1000_s", wall * 1000 / baseline_slice)
                print(f"run {run + 1}: " + ", ".join(f"{k}={v[-1]:.2f}" for k, v in figures.items()), flush=True)
            empty_roaming_tables()
            database = db.session.get_bind().dialect.name
            db.session.execute(text("SELECT 1"))  # the connection is alive to the end
        finally:
            if running is not None:
                running.stop()

    medians = {key: round(statistics.median(values), 2) for key, values in figures.items()}
    import_per_1000 = medians["import_s"] * 1000 / len(objects)
    entry: dict[str, Any] = {
        "n_locations": len(objects),
        "n_evses": sum(len(o.get("evses", [])) for o in objects),
        "n_connectors": sum(len(e.get("connectors", [])) for o in objects for e in o.get("evses", [])),
        "runs": args.runs,
        "batch_size": BATCH_SIZE,
        **medians,
        "baseline": (
            f"the Receiver's per-object PUT path (ORM, a commit per object) on the first {baseline_slice} locations, "
            "per 1,000; ratio = its time per location / the importer's"
        ),
        "ratio_per_object_vs_import": round(medians["per_object_path_per_1000_s"] / import_per_1000, 1),
        "ratio_import_vs_reimport": round(medians["import_s"] / medians["reimport_s"], 2),
        "database": database,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "unit": "seconds (wall; *_cpu_s: CPU of this process and its workers), median of runs",
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if args.size in TARGET_S:
        entry["import_target_s"] = TARGET_S[args.size]
        entry["meets_target"] = medians["import_s"] < TARGET_S[args.size]
    if "pull_s" in medians:
        entry["pull_target_s"] = 60
        entry["pull_page_limit"] = args.page_limit
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    section = results.get("locations", {})
    if "import_s" in section:  # the figures of before, when the key held one flat entry for the shared data
        section = {"before_change": section}
    section[args.size] = entry
    results["locations"] = section
    args.results.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(entry, indent=2))
    return entry


if __name__ == "__main__":
    main()
