"""Running a benchmark of ``bench/`` at its small size from the suite, to keep it working: no timing is asserted,
only that it measures what it says and keeps the figures other benchmarks wrote (read-modify-write)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OTHERS = {"other": {"kept": True}}  # another benchmark's figures, which a run must leave as they are


def run_small(script: str, tmp_path: Path, *args: str, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``bench/<script>`` with ``args`` and ``--results`` on a file of ``tmp_path`` holding ``before`` (default:
    another benchmark's figures); its figures after the run, once checked that it succeeded and kept the others."""
    results = tmp_path / "results.json"
    results.write_text(json.dumps(before or OTHERS))
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args, "--results", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    figures: dict[str, Any] = json.loads(results.read_text())
    assert figures["other"] == OTHERS["other"]  # read-modify-write: other benchmarks' keys stay
    return figures
