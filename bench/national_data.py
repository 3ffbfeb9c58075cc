"""The steps of ``bench_national.py`` on the database side: generate (``flask demo generate``), rate (the
service's per-CDR unit in several processes, the service's own pass as baseline), history (the older months
charged and invoiced) and the monthly run (``bench_billing_run``'s preview, approve and finalize), with the
run's checks."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import bench_billing_run as billing_bench
from sqlalchemy import func, select, text

from app.billing.invoicing.composition import period_bounds
from app.billing.models import Invoice, InvoiceRun, NumberSeries
from app.billing.runs import services as runs
from app.charging.models import Cdr
from app.demo.generate_base import shift_month
from app.extensions import db
from app.rating.models import SessionCharge
from app.rating.pending import BATCH_SIZE, rate_pending_batches

ROOT = Path(__file__).resolve().parents[1]
# A preview rates every pending CDR in its one transaction: above this many, the bench stops rather than measure that.
PREVIEW_PENDING_LIMIT = 20_000
_LONG_AGO = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SHARES_PER_PROCESS = 4


# ------------------------------------------------------------------------------------------------ 1. generate


def _already_generated(app: Any, size: dict[str, Any], month: str) -> dict[str, int] | None:
    """The counts of a previous generation of the same size and month, or None when it must be generated."""
    with app.app_context():
        start, end = period_bounds(month)
        try:
            counts = {
                table: db.session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608 (constant names)
                for table in ("accounts", "cards", "roaming_locations", "roaming_cdrs")
            }
            last = db.session.scalar(select(func.max(Cdr.start_date_time)))
        except Exception:  # no schema yet
            db.session.rollback()
            return None
        db.session.rollback()
    wanted = (size["accounts"], size["locations"], size["cdrs"])
    found = (counts["accounts"], counts["roaming_locations"], counts["roaming_cdrs"])
    if found != wanted or last is None or not start <= last < end:
        return None
    return counts


def step_generate(app: Any, url: str, size: dict[str, Any], month: str, regenerate: bool) -> dict[str, Any]:
    present = None if regenerate else _already_generated(app, size, month)
    if present is not None:
        return {"kept_from_earlier_run": True, "rows": present, "errors": 0}
    started = time.perf_counter()
    billing_bench._reset(app)
    with app.app_context():
        db.engine.dispose()
    reset_s = time.perf_counter() - started
    command = [
        str(ROOT / ".venv/bin/flask"),
        *("--app", "wsgi", "demo", "generate"),
        *("--accounts", str(size["accounts"]), "--cards-per-account", str(size["cards_per_account"])),
        *("--locations", str(size["locations"]), "--cdrs", str(size["cdrs"])),
        *("--months", str(size["months"]), "--month", month, "--seed", "1"),
    ]
    started = time.perf_counter()
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as generator:
        output = []
        for line in generator.stdout or ():  # its progress, as it goes: national data takes a while
            output.append(line)
            print(f"   {line.rstrip()}", flush=True)
    generate_s = time.perf_counter() - started
    said = "".join(output)
    if generator.returncode:
        raise SystemExit(f"flask demo generate failed ({generator.returncode}):\n{said[-3000:]}")
    reported = re.search(r"generated \S+ .* in ([0-9.]+) s:", said)
    started = time.perf_counter()
    billing_bench._vacuum(app)  # what autovacuum does after a bulk load: visibility map, statistics
    vacuum_s = time.perf_counter() - started
    counts = _already_generated(app, size, month)
    if counts is None:
        raise SystemExit(f"the generated data does not match the size asked:\n{said[-2000:]}")
    return {
        "command": " ".join(["flask", *command[3:]]),
        "reset_and_migrate_s": round(reset_s, 1),
        "generate_s": round(generate_s, 1),
        "generator_reported_s": float(reported.group(1)) if reported else None,
        "vacuum_analyze_s": round(vacuum_s, 1),
        "rows": counts,
        "cdrs_per_s": round(size["cdrs"] / generate_s),
        "errors": 0,
    }


# ------------------------------------------------------------------------------------------------ 2. rate


class Workers:
    """The worker processes of the rating and of both runs, started once with ``bench_billing_run``'s initializer
    (one app each, as a Celery worker has): every start imports the app, seconds on a busy machine."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: Any = None
        self.start_s: float | None = None

    def pool(self) -> Any:
        """The pool, every process started and holding its app (the first call waits for that, so no step's
        timing counts the imports)."""
        if self._pool is None:
            started = time.perf_counter()
            context = multiprocessing.get_context("spawn")
            self._pool = context.Pool(self.processes, initializer=billing_bench._init_worker)
            ready: set[int] = set()
            while len(ready) < self.processes:
                ready.update(self._pool.map(_pid_after_a_while, range(self.processes * 4), chunksize=1))
            self.start_s = round(time.perf_counter() - started, 1)
        return self._pool

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None


def _pid_after_a_while(_index: int) -> int:
    time.sleep(0.05)  # long enough for every idle process of the pool to take one
    return os.getpid()


def _rate_share(task: tuple[int, int, int, dt.datetime | None, dt.datetime]) -> dict[str, Any]:
    """One process's share of the rating: the pending CDRs of the accounts with ``account_id % shares == share``
    started in [since, until), in the service's order (originals before credits, oldest first), each through the
    service's own unit (``_rate_or_record``: a savepoint, a problem recorded on failure), a commit per batch.

    The ids are read once up front, not by the service's keyset query per batch: that query has no index for its
    order (credit, start, id), so at 10M CDRs each batch would scan the table (see the baseline)."""
    from app.rating.pending import _pending_after, _rate_or_record
    from app.rating.problems import PendingOutcome

    share, shares, every, since, until = task
    with billing_bench._worker_app.app_context():  # type: ignore[union-attr]
        # With ``every`` > 1, only one account in ``every`` is rated here (a sample: the share's accounts are
        # those with account_id % (shares * every) == share).
        query = _pending_after(None).where(Cdr.account_id % (shares * every) == share, Cdr.start_date_time < until)
        if since is not None:
            query = query.where(Cdr.start_date_time >= since)
        rows = db.session.execute(query).all()
        db.session.rollback()
        started = time.perf_counter()
        rated, problems = 0, []
        for first in range(0, len(rows), BATCH_SIZE):
            outcome = PendingOutcome()
            for cdr_id, ocpi_id, _credit, _start in rows[first : first + BATCH_SIZE]:
                _rate_or_record(cdr_id, ocpi_id, outcome)
            db.session.commit()
            db.session.expunge_all()
            rated += outcome.rated
            problems.extend(outcome.lines())
        seconds = time.perf_counter() - started
        db.session.remove()
    return {"share": share, "pending": len(rows), "rated": rated, "problems": problems[:20], "rate_s": seconds}


def rate_in_processes(
    workers: Workers, since: dt.datetime | None, until: dt.datetime, every: int = 1
) -> dict[str, Any]:
    """The pending CDRs started in [since, until) rated by the worker processes, in shares of the accounts: more
    shares than processes, so a process that started late or rates slowly takes fewer. With ``every`` > 1, only
    the CDRs of one account in ``every`` (a sample)."""
    pool = workers.pool()
    started = time.perf_counter()
    shares = workers.processes * SHARES_PER_PROCESS
    tasks = [(share, shares, every, since, until) for share in range(shares)]
    done = list(pool.imap_unordered(_rate_share, tasks))
    wall = time.perf_counter() - started
    rated = sum(share["rated"] for share in done)
    return {
        "processes": workers.processes,
        "processes_start_s": workers.start_s,  # once, not counted in the rate
        "account_shares": shares,
        "accounts_sampled": f"1 in {every}",
        "rated": rated,
        "not_rated": sum(share["pending"] - share["rated"] for share in done),
        "problems": [line for share in done for line in share["problems"]][:20],
        "wall_s": round(wall, 1),
        "rating_s_summed_over_shares": round(sum(share["rate_s"] for share in done), 1),
        "cdrs_per_s": round(rated / wall, 1) if rated else None,
    }


def _pending_count(app: Any, since: dt.datetime | None = None, until: dt.datetime | None = None) -> int:
    with app.app_context():
        query = (
            select(func.count(Cdr.id))
            .outerjoin(SessionCharge, SessionCharge.cdr_id == Cdr.id)
            .where(SessionCharge.id.is_(None), Cdr.account_id.is_not(None))
        )
        if since is not None:
            query = query.where(Cdr.start_date_time >= since)
        if until is not None:
            query = query.where(Cdr.start_date_time < until)
        count = db.session.scalar(query) or 0
        db.session.rollback()
        return count


def step_rate(
    app: Any, workers: Workers, month: str, baseline_cdrs: int, rerate: bool, sample_every: int = 1
) -> dict[str, Any]:
    """The month's CDRs rated by the engine in processes. With ``sample_every`` > 1 (the national size: 1,000,000
    CDRs at a few hundred a second is most of an hour, and the rate is what is measured), the engine rates the
    CDRs of one account in ``sample_every``, and the rest of the month gets the history's set-based charges (the
    CPO cost the CDR states, no fees): the run that follows bills both kinds alike."""
    with app.app_context():
        start, end = period_bounds(month)
        if rerate:
            db.session.execute(
                text(
                    f"TRUNCATE {', '.join(billing_bench.BILLING_TABLES)}, rating_session_charges, rating_problems, "
                    "rating_reconciliation_findings CASCADE"
                )
            )
            db.session.commit()
    in_month = _pending_count(app, start, end)
    if not in_month:
        with app.app_context():
            charged = db.session.scalar(
                select(func.count(SessionCharge.id))
                .join(Cdr, Cdr.id == SessionCharge.cdr_id)
                .where(Cdr.start_date_time >= start, Cdr.start_date_time < end)
            )
            db.session.rollback()
        return {"kept_from_earlier_run": True, "charges_in_month": charged, "errors": 0}
    figures: dict[str, Any] = {"month": month, "pending_in_month": in_month}
    if baseline_cdrs:
        with app.app_context():
            started, rated, failed = time.perf_counter(), 0, 0
            for batch in rate_pending_batches(limit=baseline_cdrs):
                db.session.commit()
                rated += batch.rated
                failed += len(batch.not_rated)
            seconds = time.perf_counter() - started
        figures["baseline"] = {
            "what": "the service's own pass (rate_pending_batches: keyset query per batch of 1,000, one process), "
            "on the oldest pending CDRs",
            "rated": rated,
            "not_rated": failed,
            "s": round(seconds, 1),
            "cdrs_per_s": round(rated / seconds, 1) if rated else None,
        }
    measured = rate_in_processes(workers, start, end, sample_every)
    figures.update(measured)
    if sample_every > 1:
        started = time.perf_counter()
        with app.app_context():
            written = db.session.execute(text(_HISTORY_CHARGES), {"since": start, "before": end}).rowcount
            db.session.commit()
        figures["rest_of_month_set_based"] = {"charges": written, "s": round(time.perf_counter() - started, 1)}
    figures["s_for_1m_cdrs"] = round(1_000_000 / measured["cdrs_per_s"]) if measured["cdrs_per_s"] else None
    baseline_rate = (figures.get("baseline") or {}).get("cdrs_per_s")
    if baseline_rate and measured["cdrs_per_s"]:
        figures["ratio_processes_vs_service_pass"] = round(measured["cdrs_per_s"] / baseline_rate, 2)
    figures["errors"] = measured["not_rated"] + (figures.get("baseline") or {}).get("not_rated", 0)
    return figures


# ------------------------------------------------------------------------------------------------ 3. history

_HISTORY_CHARGES = """
INSERT INTO rating_session_charges (cdr_id, account_id, plan_id, tariff_source, country, currency, kwh,
    cpo_cost_excl_vat, markup_percent_amount, markup_per_kwh_amount, session_fee, driver_excl_vat, vat_rate,
    vat_amount, driver_incl_vat, margin, estimate_incl_vat, breakdown, priced_at)
SELECT c.id, c.account_id, plan.plan_id, 'cdr_total_cost',
       CASE c.country WHEN 'BEL' THEN 'BE' WHEN 'NLD' THEN 'NL' ELSE left(c.country, 2) END, c.currency,
       c.total_energy, c.total_cost_excl_vat, 0, 0, 0, c.total_cost_excl_vat, 21,
       round(c.total_cost_excl_vat * 0.21, 4), round(c.total_cost_excl_vat * 1.21, 4), 0,
       round(c.total_cost_excl_vat * 1.21, 4), '{"bench": "history charge, written set-based by bench_national.py"}',
       c.received_at
FROM roaming_cdrs c
LEFT JOIN LATERAL (SELECT s.plan_id FROM subscriptions s WHERE s.account_id = c.account_id
                   AND s.starts_at <= c.start_date_time ORDER BY s.starts_at DESC LIMIT 1) plan ON true
WHERE c.account_id IS NOT NULL AND NOT c.credit AND c.start_date_time >= :since AND c.start_date_time < :before
  AND NOT EXISTS (SELECT 1 FROM rating_session_charges r WHERE r.cdr_id = c.id)
"""


def _check_nothing_to_rate_in_preview(app: Any) -> int:
    pending = _pending_count(app)
    if pending > PREVIEW_PENDING_LIMIT:
        raise SystemExit(
            f"{pending} CDRs have no charge: the preview would rate them all in its one transaction. "
            "Run the rate and history steps first."
        )
    return pending


def timed_run(app: Any, workers: Workers, period: str) -> dict[str, Any]:
    """Preview → approve → finalize of ``period`` (bench_billing_run's own steps), then the checks."""
    pending = _check_nothing_to_rate_in_preview(app)
    pool = workers.pool()  # started before the run's clock
    run_id, preview_s, approve_s = billing_bench._prepare(app, period, workers.processes)
    finalize_s = billing_bench._finalize(app, run_id, workers.processes, pool=pool)
    total = preview_s + approve_s + finalize_s
    checked = check_run(app, run_id)
    return {
        "period": period,
        "processes": workers.processes,
        "pending_cdrs_rated_by_preview": pending,
        "preview_s": round(preview_s, 1),
        "approve_s": round(approve_s, 1),
        "finalize_s": round(finalize_s, 1),
        "run_s": round(total, 1),
        "accounts_per_s": round(checked["run_items"] / total, 1),
        **checked,
    }


def check_run(app: Any, run_id: int) -> dict[str, Any]:
    """What the guarantees say: every account done, every number series 1..n without gap, the run's invoices
    one block of numbers, no session of the period left uninvoiced (held ones apart)."""
    with app.app_context():
        run = db.session.get_one(InvoiceRun, run_id)
        counts = runs.progress(run)
        series = db.session.execute(
            select(Invoice.series, func.count(), func.min(Invoice.sequence), func.max(Invoice.sequence))
            .where(Invoice.sequence.is_not(None))
            .group_by(Invoice.series)
        ).all()
        next_numbers = dict(db.session.execute(select(NumberSeries.series, NumberSeries.next_number)).all())
        gapless = all(
            first == 1 and last == count and next_numbers.get(name) == last + 1 for name, count, first, last in series
        )
        mine = db.session.execute(
            select(Invoice.series, func.count(), func.min(Invoice.sequence), func.max(Invoice.sequence))
            .where(Invoice.run_id == run_id)
            .group_by(Invoice.series)
        ).all()
        one_block = all(last - first + 1 == count for _name, count, first, last in mine)
        invoices = sum(count for _name, count, _first, _last in mine)
        lines = db.session.scalar(
            text(
                "SELECT count(*) FROM billing_invoice_lines l JOIN billing_invoices i ON i.id = l.invoice_id "
                "WHERE i.run_id = :run"
            ),
            {"run": run_id},
        )
        held = db.session.scalar(text("SELECT count(*) FROM billing_session_holds"))
        uninvoiced = len(runs.uninvoiced_sessions(run.period))
        status = run.status.value
        db.session.rollback()
    errors = counts["failed"] + counts["pending"] + uninvoiced + (not gapless) + (not one_block)
    return {
        "status": status,
        "run_items": counts["total"],
        "done": counts["done"],
        "skipped_items": counts["skipped"],  # accounts with nothing to invoice after all
        "failed": counts["failed"],
        "invoices": invoices,
        "invoice_lines": lines,
        "numbers": {name: f"{first}..{last}" for name, _count, first, last in mine},
        "numbers_gapless": gapless and one_block,
        "held_sessions_all_periods": held,
        "uninvoiced_sessions": uninvoiced,
        "errors": errors,
    }


def step_history(app: Any, workers: Workers, month: str, charges: str) -> dict[str, Any]:
    with app.app_context():
        start, _end = period_bounds(month)
    figures: dict[str, Any] = {"months_before": shift_month(month, -1), "charges": charges}
    started = time.perf_counter()
    if charges == "engine":
        rated = rate_in_processes(workers, None, start)
        figures["rated_by_engine"] = rated
        written = rated["rated"]
    else:
        with app.app_context():
            written = db.session.execute(text(_HISTORY_CHARGES), {"since": _LONG_AGO, "before": start}).rowcount
            db.session.commit()
    figures["charges_written"] = written
    figures["charges_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    billing_bench._clear_billing(app)  # earlier runs' invoices go; includes VACUUM ANALYZE
    figures["clear_billing_and_vacuum_s"] = round(time.perf_counter() - started, 1)
    figures["run"] = timed_run(app, workers, shift_month(month, -1))
    figures["errors"] = figures["run"]["errors"] + (figures.get("rated_by_engine") or {}).get("not_rated", 0)
    return figures


# ------------------------------------------------------------------------------------------------ 5. run


def step_run(app: Any, workers: Workers, month: str, accounts: int) -> dict[str, Any]:
    with app.app_context():
        existing = runs.run_for(month)
        db.session.rollback()
    if existing is not None:
        raise SystemExit(f"a run of {month} exists already: run again with the history step (it clears billing)")
    figures = timed_run(app, workers, month)
    figures["generated_accounts"] = accounts
    # Per generated account: at national size as here, only the accounts with something to bill are run items.
    figures["extrapolated_s_for_1m_accounts"] = round(figures["run_s"] * 1_000_000 / accounts)
    return figures
