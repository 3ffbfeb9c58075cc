"""Pulling many modules and partners at once: the periodic pull (``roaming.pull_all``) and "pull now"
(``roaming.pull_partner``), both in ``app/roaming/tasks.py``.

A batch fails one unit and goes on: the unit is one module of one partner. A module that fails (the partner is
down, a page keeps failing, an unexpected error) is reported with why, and the partner's other modules and the
other partners are pulled all the same; the failed module's cursor says where its next run resumes. Only a
partner that gives no answer at all (timed out, no connection) has its remaining modules left for the next run:
each would wait out the same deadlines. Every module's pull commits its own pages (``pull.pull``); a run already
under way for a cursor is not started twice (``pull_lock``).

Only REGISTERED partners are pulled from (hubs and CPOs alike): a suspended, unregistered or removed one is
skipped, with the reason in the report.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.failures import failure_reason
from app.roaming.models import Partner, PartnerStatus
from app.roaming.receive.pull import MODULES, PullError, pull

log = logging.getLogger(__name__)

SENDER = "SENDER"


def sender_modules(partner: Partner) -> list[str]:
    """The modules of ours the partner offers as Sender, in pull order (tariffs before the sessions using them)."""
    return [module for module in MODULES if partner.endpoint_url(module, SENDER)]


def partners_to_pull() -> list[int]:
    """Ids of the registered partners (hubs and CPOs) that offer at least one module we pull."""
    partners = db.session.scalars(
        select(Partner).where(Partner.status == PartnerStatus.REGISTERED).order_by(Partner.id)
    ).all()
    return [partner.id for partner in partners if sender_modules(partner)]


def pull_partner_modules(
    partner_id: int, modules: list[str] | None = None, *, restart: bool = False
) -> dict[str, dict[str, Any]]:
    """Pull ``modules`` (default: every module the partner sends) of one partner, each on its own.

    Returns, per module, what the run did (``pages``, ``received``, ``stored``, ``stale``, ``skipped``,
    ``resumed``, ``notes``) or why it failed (``error``); a partner that is not registered gets one entry,
    ``"partner"``, with ``skipped``. Raises ``ValueError`` for a module we do not pull and ``LookupError`` for an
    unknown partner, before anything is done."""
    unknown = sorted(set(modules or ()) - set(MODULES))
    if unknown:
        raise ValueError(f"unknown module {', '.join(unknown)}; expected some of {', '.join(MODULES)}")
    partner = db.session.get(Partner, partner_id)
    if partner is None:
        raise LookupError(f"no partner {partner_id}")
    if partner.status != PartnerStatus.REGISTERED:
        return {"partner": {"skipped": f"partner {partner.name} is {partner.status}: nothing is pulled from it"}}
    wanted = [module for module in MODULES if module in modules] if modules else sender_modules(partner)
    report: dict[str, dict[str, Any]] = {}
    silent_at: str | None = None
    for module in wanted:
        if silent_at is not None:
            # It gave no answer at all to the module before: asking for this one would only wait out the same
            # deadlines and retries (minutes per module). Its cursor is untouched; the next run pulls it.
            report[module] = {"skipped": f"the partner gave no answer to {silent_at}: pulled in the next run"}
            continue
        report[module] = _pull_one(partner_id, module, restart=restart)
        if report[module].get("no_answer"):
            silent_at = module
    return report


def _pull_one(partner_id: int, module: str, *, restart: bool) -> dict[str, Any]:
    partner = db.session.get(Partner, partner_id)  # again: a failed module before rolled the session back
    if partner is None:
        return {"error": f"partner {partner_id} is gone"}
    try:
        result = pull(partner, module, restart=restart)
    except PullError as exc:  # the cursor holds the error and where to resume
        log.warning("pull %s from %s failed: %s", module, partner.name, exc)
        return {"error": str(exc), "no_answer": exc.no_answer}
    except Exception as exc:  # one unit fails, the batch goes on (DESIGN §5)
        db.session.rollback()
        log.exception("pull %s from partner %s failed", module, partner_id)
        return {"error": failure_reason(exc)}
    return {
        "pages": result.pages,
        "received": result.received,
        "stored": result.stored,
        "stale": result.stale,
        "skipped": len(result.errors),
        "resumed": result.resumed,
        "notes": list(result.notes),
    }
