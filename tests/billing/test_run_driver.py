"""One path for the monthly run: ``flask billing`` and the finance back office both take it through
``runs.driver``, step by step, with the same audit; they differ only in what they show and in waiting for the
workers."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from app.audit.models import AuditEntry
from app.billing.models import Invoice, InvoiceRun, RunStatus
from app.billing.runs import dispatch, driver
from app.billing.runs import services as runs
from app.extensions import db
from tests.billing.sessions import rated_session
from tests.billing.test_finance_backoffice import OCT, RUNS, _driver, _finance, _post

NOV = OCT + dt.timedelta(days=31)


def _sessions_in(*starts: dt.datetime) -> None:
    for start in starts:
        user, card = _driver()
        rated_session(user.account.id, card.id, start)
    db.session.commit()


def _spy_on_the_driver(monkeypatch) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Record every step a door takes through the driver, with the run's month."""
    taken: list[tuple[str, str]] = []
    for step in ("preview", "approve", "finalize", "deliver"):
        real = getattr(driver, step)

        def spy(first, *args, _step=step, _real=real, **kwargs):  # type: ignore[no-untyped-def]
            taken.append((_step, first if isinstance(first, str) else first.period))
            return _real(first, *args, **kwargs)

        monkeypatch.setattr(driver, step, spy)
    return taken


def _run_steps(run: InvoiceRun) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject_type == "billing_run", AuditEntry.subject_id == str(run.id))
            .order_by(AuditEntry.id)
        )
    )


def _cli(app, *args: str):  # type: ignore[no-untyped-def]
    result = app.test_cli_runner().invoke(args=["billing", *args])
    assert result.exit_code == 0, result.output
    return result


def _back_office_run(client, period: str) -> InvoiceRun:  # type: ignore[no-untyped-def]
    _post(client, RUNS, {"period": period})
    run = runs.run_for(period)
    _post(client, f"{RUNS}/{run.id}/approve", {}, form_url=f"{RUNS}/{run.id}")
    _post(client, f"{RUNS}/{run.id}/finalize", {"confirm": "y"}, form_url=f"{RUNS}/{run.id}")
    db.session.expire_all()
    return db.session.get(InvoiceRun, run.id)


def test_the_cli_and_the_back_office_take_the_same_steps_through_the_driver(app, client, monkeypatch):
    _sessions_in(OCT, OCT)
    _sessions_in(NOV, NOV)
    taken = _spy_on_the_driver(monkeypatch)

    _cli(app, "run", "--period", "2026-10", "--dry-run")
    _cli(app, "approve", "--period", "2026-10")
    final = _cli(app, "run", "--period", "2026-10")
    db.session.expire_all()
    by_cli = runs.run_for("2026-10")
    _finance(client)
    by_back_office = _back_office_run(client, "2026-11")

    steps = ["preview", "approve", "finalize", "deliver"]
    assert taken == [(step, "2026-10") for step in steps] + [(step, "2026-11") for step in steps]
    assert "invoicing 2026-10" in final.output and '"delivered": 2' in final.output  # the CLI's own output
    for run in (by_cli, by_back_office):
        assert run.status == RunStatus.FINALIZED and run.results["invoices"] == 2
        assert _run_steps(run) == ["billing.preview", "billing.approve", "billing.finalize", "billing.deliver"]
        sent = db.session.scalars(select(Invoice).where(Invoice.run_id == run.id)).all()
        assert len(sent) == 2 and all(invoice.emailed_at and invoice.pdf_rendered_at for invoice in sent)
    numbers = sorted(db.session.scalars(select(Invoice.sequence)))
    assert numbers == [1, 2, 3, 4]  # one series across both doors, no gap


def test_with_workers_the_cli_waits_for_them_and_the_back_office_leaves_the_sending_for_later(app, client, monkeypatch):
    # As with a broker: the driver hands chunks and invoices out as tasks. Celery itself stays eager in tests,
    # so each task runs at once, as if a worker took it immediately.
    monkeypatch.setattr(dispatch, "is_eager", lambda: False)
    _sessions_in(OCT)
    _sessions_in(NOV)

    _cli(app, "run", "--period", "2026-10", "--dry-run")
    _cli(app, "approve", "--period", "2026-10")
    final = _cli(app, "run", "--period", "2026-10")
    figures = json.loads(final.output[final.output.index("{") : final.output.index("queued")])
    assert figures["status"] == "finalized" and figures["progress"]["done"] == 1  # waited for the workers
    assert "queued delivery of 1 invoices" in final.output  # then handed the sending to them

    _finance(client)
    by_back_office = _back_office_run(client, "2026-11")
    assert by_back_office.status == RunStatus.FINALIZED  # the workers finished it ...
    assert "billing.deliver" not in _run_steps(by_back_office)  # ... and the page, not the request, sends it
    _post(client, f"{RUNS}/{by_back_office.id}/deliver", {}, form_url=f"{RUNS}/{by_back_office.id}")
    assert _run_steps(by_back_office)[-1] == "billing.deliver"
