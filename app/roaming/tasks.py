"""Celery wrappers for the roaming jobs. Each task commits its own work (services only flush).

Schedule (``BEAT_SCHEDULE``, added to the beat schedule by the package's ``init_app``):

- ``roaming.push_tokens`` every 30 s: fan out token updates and push what is due (retries with backoff);
- ``roaming.expire_commands`` every 30 s: record ``TIMEOUT`` for commands without result;
- ``roaming.export_whitelists`` every 6 h: write the whitelist files (JSON + CSV) for partners without a
  Tokens Receiver, into ``WHITELIST_EXPORT_DIR`` (default ``instance/whitelists``) as
  ``{country_code}-{party_id}-tokens.json`` / ``.csv``;
- ``roaming.pull_all`` every ``ROAMING_PULL_INTERVAL`` seconds (default 15 min; :func:`beat_schedule`): queue
  ``roaming.pull_partner`` for every registered partner with Sender endpoints, each module pulled on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import current_app

from app.extensions import db
from app.jobs import task

log = logging.getLogger(__name__)

DEFAULT_PULL_INTERVAL = 15 * 60.0  # seconds; ROAMING_PULL_INTERVAL in the configuration

BEAT_SCHEDULE = {
    "roaming-push-tokens": {"task": "roaming.push_tokens", "schedule": 30.0},
    "roaming-expire-commands": {"task": "roaming.expire_commands", "schedule": 30.0},
    "roaming-export-whitelists": {"task": "roaming.export_whitelists", "schedule": 6 * 3600.0},
    "roaming-pull-all": {"task": "roaming.pull_all", "schedule": DEFAULT_PULL_INTERVAL},  # see beat_schedule()
}


@task(name="roaming.push_tokens")
def push_tokens() -> dict[str, int]:
    from app.roaming.send.token_push import run_push

    return run_push(commit=True)


@task(name="roaming.expire_commands")
def expire_commands() -> int:
    from app.roaming.send.commands import expire_commands as expire

    count = expire()
    db.session.commit()
    return count


def whitelist_dir() -> Path:
    configured = current_app.config.get("WHITELIST_EXPORT_DIR")
    return Path(configured) if configured else Path(current_app.instance_path) / "whitelists"


@task(name="roaming.export_whitelists")
def export_whitelists() -> list[str]:
    from app.roaming.send.whitelist import export_whitelist, partners_for_file_whitelist

    written = []
    for partner in partners_for_file_whitelist():
        out = whitelist_dir() / f"{partner.country_code}-{partner.party_id}-tokens.json"
        written.append(str(export_whitelist(partner, out).json_path))
        db.session.rollback()  # read-only; end the snapshot between partners
    return written


@task(name="roaming.reprocess_quarantine")
def reprocess_quarantine(partner_id: int | None = None, ids: list[int] | None = None) -> dict[str, int]:
    """Run pending quarantined objects (of a partner, or the ids given) through the store path again, in one unit
    of work; then tell the CDR listeners of the new CDRs (after the commit, as the door does)."""
    from app.roaming.cdr_listeners import cdr_stored
    from app.roaming.receive.quarantine import reprocess

    report = reprocess(partner_id, ids)
    db.session.commit()
    for cdr_id in report.new_cdr_ids:
        cdr_stored(cdr_id)
    return {"examined": report.examined, "resolved": report.resolved, "still_failing": len(report.still_failing)}


def beat_schedule(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``BEAT_SCHEDULE`` with the periodic pull every ``ROAMING_PULL_INTERVAL`` seconds of ``config``."""
    configured = config.get("ROAMING_PULL_INTERVAL")
    interval = DEFAULT_PULL_INTERVAL if configured is None else float(configured)
    if not interval > 0:  # also NaN
        raise ValueError(f"ROAMING_PULL_INTERVAL must be a positive number of seconds, not {interval}")
    return {**BEAT_SCHEDULE, "roaming-pull-all": {**BEAT_SCHEDULE["roaming-pull-all"], "schedule": interval}}


@task(name="roaming.pull_partner")
def pull_partner(partner_id: int, modules: list[str] | None = None, restart: bool = False) -> dict[str, dict[str, Any]]:
    """Pull a partner's Sender modules (all it offers, or ``modules``), each on its own; ``restart`` forgets the
    cursors first (a full pull). Each module's pull commits its pages; what failed is in the answer and on the
    module's cursor. The operations page's "pull now" queues this task: keep the signature."""
    from app.roaming.receive.pull_batch import pull_partner_modules

    return pull_partner_modules(partner_id, modules, restart=restart)


@task(name="roaming.pull_all")
def pull_all() -> list[int]:
    """Queue ``roaming.pull_partner`` for every registered partner with Sender endpoints (hubs and CPOs): on
    workers they run side by side; without a broker one after the other, one partner's failure not stopping
    the others. Returns the partners queued."""
    from app.roaming.receive.pull_batch import partners_to_pull

    queued = partners_to_pull()
    db.session.rollback()  # read only: end the snapshot before the pulls (inline without a broker)
    for partner_id in queued:
        try:
            pull_partner.delay(partner_id)
        except Exception:  # inline (no broker) a partner's failure would reach us: the others go on
            db.session.rollback()
            log.exception("pull of partner %s failed", partner_id)
    return queued
