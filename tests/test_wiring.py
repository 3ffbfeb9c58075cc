"""Wiring is explicit: a process that only runs ``create_app`` (a Celery worker, beat, a script) gets every rule
that one package plugs into another, whatever else it happens to import.

Before, the "unpaid and overdue ⇒ NO_CREDIT" rule was registered only when ``app.billing.dunning`` happened to
be imported (through the portal's import chain): a worker that authorized without that chain dropped it.
These tests start a fresh interpreter, as ``celery -A app.worker worker`` does, and look inside it.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json
import app.worker  # what `celery -A app.worker worker` imports, and nothing else of ours
from app.extensions import celery
from app.roaming.send.authorization import STANDING_CHECKS, _card_with_standing_statement
statement = str(_card_with_standing_statement().compile(compile_kwargs={"literal_binds": False}))
print(json.dumps({
    "checks": [check.name for check in STANDING_CHECKS],
    "asks_invoices": "billing_invoices" in statement,
    "beat": sorted(celery.conf.beat_schedule),
    "tasks": sorted(name for name in celery.tasks if not name.startswith("celery.")),
}))
"""


def _probe() -> dict[str, object]:
    env = {**os.environ, "APP_ENV": "development"}
    env.pop("CELERY_BROKER_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_bare_worker_process_refuses_cards_of_accounts_with_unpaid_overdue_invoices():
    found = _probe()
    assert "unpaid overdue invoice" in found["checks"]
    # The one query real-time authorization runs asks about the account's invoices.
    assert found["asks_invoices"] is True


def test_a_bare_worker_process_knows_every_task_and_schedule():
    found = _probe()
    assert set(found["beat"]) >= {
        "roaming-push-tokens",
        "roaming-expire-commands",
        "roaming-export-whitelists",
        "roaming-pull-all",
        "rating.rate_pending",
        "billing-run-dunning",
        "billing-resume-collection",
    }
    assert set(found["tasks"]) >= {
        "billing.finalize_chunk",
        "billing.deliver_invoice",
        "billing.collect_invoice",
        "billing.run_dunning",
        "billing.resume_collection",
        "rating.rate_cdr",
        "rating.rate_cdrs",
        "rating.rate_pending",
        "roaming.push_tokens",
        "roaming.expire_commands",
        "roaming.export_whitelists",
        "roaming.pull_partner",
        "roaming.pull_all",
    }


def test_gunicorns_worker_exit_hook_flushes_the_authorization_log(app):
    """gunicorn.conf.py imports our code by name when a worker stops: a moved module must not break it."""
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    worker = SimpleNamespace(wsgi=app)
    hooks["worker_exit"](None, worker)  # raises ImportError if the hook names a module that moved
