"""Celery wrappers for the roaming jobs. Each task commits its own work (services only flush).

Schedule (``BEAT_SCHEDULE``, added to the beat schedule by the package's ``init_app``):

- ``roaming.push_tokens`` every 30 s: fan out token updates and push what is due (retries with backoff);
- ``roaming.expire_commands`` every 30 s: record ``TIMEOUT`` for commands without result;
- ``roaming.export_whitelists`` every 6 h: write the whitelist files (JSON + CSV) for partners without a
  Tokens Receiver, into ``WHITELIST_EXPORT_DIR`` (default ``instance/whitelists``) as
  ``{country_code}-{party_id}-tokens.json`` / ``.csv``.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app

from app.extensions import db
from app.jobs import task

BEAT_SCHEDULE = {
    "roaming-push-tokens": {"task": "roaming.push_tokens", "schedule": 30.0},
    "roaming-expire-commands": {"task": "roaming.expire_commands", "schedule": 30.0},
    "roaming-export-whitelists": {"task": "roaming.export_whitelists", "schedule": 6 * 3600.0},
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
