"""Benchmark of the Locations importer and pull client on PostgreSQL (issue 4 targets).

Data: the shared NDW snapshot, 7,609 OCPI Locations (18,970 EVSEs, 19,052 connectors). Measured in one call,
each ``--runs`` times on an emptied roaming schema, medians reported:

* ``import``: ``import_locations(file)`` into empty tables (target < 30 s), and a re-import of the same file
  (every object updated in place: the idempotent path);
* ``pull``: ``pull(partner, "locations")`` of the same 7,609 objects from the fake OCPI CPO of the tests, a
  real HTTP server on loopback, 100 objects per page (target < 60 s);
* ``naive``: the per-object receiver path (``upsert_location`` + a commit per object, as 7,609 PUTs would do)
  on the first 1,000 locations, as the baseline for the batched importer (ratio = naive / batched, per object).

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_r2 python bench/bench_locations.py [--runs 3]

The database is migrated if needed and its roaming tables are emptied between runs: never point this at data
you want to keep. Figures go to bench/results.json under the key "locations" (read-modify-write).
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
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade
from scratch_database import ensure_database  # bench/ is the script's folder
from sqlalchemy import text

from app import create_app
from app.extensions import db
from app.roaming.models import Partner, PartnerStatus
from app.roaming.receive.importers import import_locations
from app.roaming.receive.locations import upsert_location
from app.roaming.receive.pull import pull
from tests.roaming.fake_cpo import start_fake_cpo
from tests.roaming.fake_cpo.sender import sender_endpoints

DATA = SHARED / "data/ocpi-nl-10-cities/locations.json.gz"
RESULTS = ROOT / "bench" / "results.json"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_r2"
NAIVE_SLICE = 1000
BENCH_TOKEN = "bench-token"  # noqa: S105  (a loopback test server, not a secret)


def empty_roaming_tables() -> None:
    db.session.execute(
        text(
            "TRUNCATE roaming_connectors, roaming_evses, roaming_locations, roaming_pull_cursors "
            "RESTART IDENTITY CASCADE"
        )
    )
    db.session.commit()


def timed(work) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def bench_partner(base_url_cpo) -> Partner:  # type: ignore[no-untyped-def]
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
    partner.endpoints = sender_endpoints(base_url_cpo)
    db.session.commit()
    return partner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--page-limit", type=int, default=100)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith("postgresql"):
        sys.exit("bench_locations runs on PostgreSQL: set DATABASE_URL=postgresql+psycopg://...")
    ensure_database(url)
    app = create_app("development", SQLALCHEMY_DATABASE_URI=url)
    objects = json.loads(gzip.decompress(DATA.read_bytes()))
    running = start_fake_cpo()
    running.cpo.accepted_tokens.add(BENCH_TOKEN)
    running.cpo.data["locations"] = objects
    figures: dict[str, list[float]] = {"import_s": [], "reimport_s": [], "pull_s": [], "naive_per_1000_s": []}
    try:
        with app.app_context():
            upgrade()
            for run in range(args.runs):
                empty_roaming_tables()
                figures["import_s"].append(timed(lambda: import_locations(DATA)))
                figures["reimport_s"].append(timed(lambda: import_locations(DATA)))
                empty_roaming_tables()
                partner = bench_partner(running.cpo)
                started = time.perf_counter()
                pulled = pull(partner, "locations", limit=args.page_limit)
                figures["pull_s"].append(time.perf_counter() - started)
                assert pulled.stored == len(objects), pulled
                empty_roaming_tables()

                def naive() -> None:
                    for obj in objects[:NAIVE_SLICE]:
                        upsert_location(obj, partner=None, country_code=obj["country_code"], party_id=obj["party_id"])
                        db.session.commit()

                figures["naive_per_1000_s"].append(timed(naive) * 1000 / NAIVE_SLICE)
                print(f"run {run + 1}: " + ", ".join(f"{k}={v[-1]:.2f}" for k, v in figures.items()), flush=True)
            empty_roaming_tables()
    finally:
        running.stop()

    medians = {key: round(statistics.median(values), 2) for key, values in figures.items()}
    batched_per_1000 = medians["import_s"] * 1000 / len(objects)
    entry = {
        "n_locations": len(objects),
        "n_evses": sum(len(o.get("evses", [])) for o in objects),
        "runs": args.runs,
        "import_s": medians["import_s"],
        "import_target_s": 30,
        "reimport_s": medians["reimport_s"],
        "pull_s": medians["pull_s"],
        "pull_target_s": 60,
        "pull_page_limit": args.page_limit,
        "naive_per_object_path_per_1000_s": medians["naive_per_1000_s"],
        "ratio_naive_vs_batched_import": round(medians["naive_per_1000_s"] / batched_per_1000, 2),
        "database": "postgresql",
        "python": platform.python_version(),
        "unit": "seconds, median of runs",
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["locations"] = entry
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
