"""Finance's pages in Chromium (a live server), in Dutch and French, on a 390 px phone and a desktop: nothing
scrolls sideways outside the tables' own frames, the finalize form cannot be sent without its "I understand"
box, and the pages speak the page's language. Screenshots go to ``SCREENSHOT_DIR`` (default: the test's
temporary folder)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from app.accounts.models import Role
from app.audit.services import Actor
from app.billing.models import Invoice, RunStatus
from app.billing.runs import services as runs
from app.cards import services as card_services
from app.extensions import db
from app.plans import services as plan_services
from tests.billing.sessions import rated_session
from tests.browser.test_support_phone import _log_in, _overflow
from tests.factories import make_user

pytestmark = pytest.mark.browser

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)


def _month_to_finalize(app) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """A driver with October sessions (one held) and the October run approved, not finalized."""
    with app.app_context():
        driver = make_user(full_name="Eva Peeters-Vandenbroucke", email="eva.finance@example.com")
        for stretch in plan_services.history(driver.account.id):
            db.session.delete(stretch)
        db.session.flush()
        plan_services.subscribe(
            driver.account,
            plan_services.current_version("payg"),
            Actor.system("test"),
            at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC),
        )
        card = card_services.issue_app_token(driver.account, Actor.of(driver))
        rated_session(driver.account.id, card.id, OCT)
        rated_session(driver.account.id, card.id, OCT + dt.timedelta(days=2), kwh="180", hours=2)
        staff = make_user(Role.ADMIN, email="finance.phone@example.com")
        db.session.commit()
        cli = app.test_cli_runner()
        for args in (["run", "--period", "2026-10", "--dry-run"], ["approve", "--period", "2026-10"]):
            assert cli.invoke(args=["billing", *args]).exit_code == 0
        run = runs.run_for("2026-10")
        assert run is not None and run.status == RunStatus.APPROVED
        return run.id, staff.email


def test_finance_pages_fit_a_phone_in_dutch_and_french(live_server, browser, tmp_path):
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    run_id, email = _month_to_finalize(live_server.app)
    base = live_server.url
    context = browser.new_context(locale="nl-BE", viewport=SIZES["desktop"])
    page = context.new_page()
    page.goto(f"{base}/login?lang=en")  # the helper fills the English form; each page below sets its language
    _log_in(page, base, email)

    # The browser itself refuses to send the finalize form without the box (no JavaScript involved).
    page.goto(f"{base}/backoffice/finance/runs/{run_id}?lang=nl")
    page.locator("form.step-form button.button--danger").click()
    assert page.locator("input[name=confirm]:invalid").count() == 1
    page.locator("input[name=confirm]").check()
    page.locator("form.step-form button.button--danger").click()
    page.wait_for_load_state()
    with live_server.app.app_context():
        number = db.session.query(Invoice.number).filter(Invoice.number.is_not(None)).scalar()
    assert number is not None

    paths = {
        "run": f"/backoffice/finance/runs/{run_id}",
        "invoices": "/backoffice/finance/invoices",
        "invoice": f"/backoffice/finance/invoices/{number}",
        "margin": "/backoffice/finance/margin",
        "holds": "/backoffice/finance/holds",
    }
    for language in ("nl", "fr"):
        for size, viewport in SIZES.items():
            page.set_viewport_size(viewport)
            for name, path in paths.items():
                page.goto(f"{base}{path}?lang={language}")
                assert page.locator("html").get_attribute("lang") == language
                page.screenshot(path=str(shots / f"finance-{name}-{language}-{size}.png"), full_page=True)
                assert _overflow(page) == [], (name, language, size)
    context.close()
