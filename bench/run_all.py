"""``make bench``: run every ``bench/bench_*.py`` on PostgreSQL and collect figures in bench/results.json.

Each script writes its own key into bench/results.json (``bench_load_and_batch.py``: "load_and_batch",
``bench_soak.py``: "soak", ...). A scratch database (``bench_emsp``) on the local PostgreSQL server is created once
and handed to the scripts as ``DATABASE_URL``; set ``BENCH_DATABASE_URL`` to use another one. Scripts can also be
run one by one (see each script's ``--help``), or a few through this runner by name:
``.venv/bin/python bench/run_all.py bench_load_and_batch bench_soak``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from scratch_database import ensure_database

HERE = Path(__file__).resolve().parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_emsp"


def main() -> int:
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    scripts = sorted(HERE.glob("bench_*.py"))
    wanted = {name.removesuffix(".py") for name in sys.argv[1:]}
    if wanted:
        unknown = wanted - {script.stem for script in scripts}
        if unknown:
            print("no such benchmark: " + ", ".join(sorted(unknown)))
            return 2
        scripts = [script for script in scripts if script.stem in wanted]
    failures = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(script)], env={**os.environ, "DATABASE_URL": url}, cwd=HERE.parent, check=False
        )
        print(f"== {script.name}: exit {result.returncode} after {time.perf_counter() - started:.0f} s", flush=True)
        if result.returncode:
            failures.append(script.name)
    print("figures in bench/results.json")
    if failures:
        print("failed: " + ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
