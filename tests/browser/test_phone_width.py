"""Every portal page on a 390 px phone (Chromium through Playwright, a live server), in Dutch, French and English,
as a signed-in driver with data (cards in every state, sessions, invoices, a credit note, an open balance, a live
session, an app device) and as a visitor: no page scrolls sideways, the navigation collapses into a menu that
opens with a click, the keyboard or without JavaScript, and the session and invoice tables become stacks whose
amounts stay on screen.

The pages come from the URL map (every GET route of the portal, that is every route outside the API, the back
office and the machine doors), so a new page is checked without anyone remembering to add it; a page with ids in
its URL gets them from the test data by the argument's name. Screenshots go to ``SCREENSHOT_DIR`` (default: the
test's temporary folder)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete

from app.accounts import api_tokens, links
from app.accounts.models import Role
from app.audit.services import Actor
from app.billing.models import Invoice, InvoiceKind, PaymentState
from app.cards import services as card_services
from app.cards.models import BlockReason
from app.charging.models import ChargingSession
from app.db import utcnow
from app.extensions import db
from app.plans import services as plan_services
from app.roaming.models import Command, CommandState, Partner, PartnerStatus
from app.roaming.receive.locations import upsert_location
from tests.billing.conftest import finalized_invoice
from tests.billing.sessions import rated_session
from tests.factories import PASSWORD, add_stock, give_payment_method, make_user, one_connector_location

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LANGUAGES = ("nl", "fr", "en")
# The pages photographed at phone width in Dutch and French, for people to look at.
SCREENSHOTS = {
    "visitor": ("portal.index", "accounts.signup"),
    "driver": ("portal.dashboard", "billing.session_history", "billing.invoice_list", "billing.invoice_detail#0"),
    "newcomer": ("portal.dashboard",),
}
DRIVER_EMAIL = "eva.peeters-vandenbroucke.phone@example.com"
NEWCOMER_EMAIL = "jean-baptiste.vandenbossche-dewilde.nouveau@example.com"
# Doors that are not the portal: the app's API, the back office, the partners' and Stripe's machine doors.
NOT_PORTAL = ("/api/", "/backoffice/", "/ocpi/", "/webhooks/", "/static/")
# Portal routes that answer a download, a JSON poll or an HTML fragment for a page's script: not pages to look at.
NOT_PAGES = {
    "billing.session_csv",
    "billing.invoice_pdf_download",
    "billing.invoice_ubl_download",
    "customer_care.export_data",
    "portal.charging.live",
    "portal.charging.command_state",
    "finder.markers",
    "finder.results",
    "finder.place",
    "finder.panel",
}

# What sticks out of the screen sideways, outside the frames that clip or scroll on their own: the widest first.
# A phone widens its layout to what overflows (and zooms out): compare with the screen's own width.
OVERFLOW_JS = """() => {
  const width = Math.min(window.innerWidth, screen.width);
  // An absolutely placed element escapes a scrolling frame unless its containing block is inside that frame.
  const inOwnFrame = (el) => {
    const position = getComputedStyle(el).position;
    let free = position === 'absolute' || position === 'fixed';
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (free && position === 'absolute' && style.position !== 'static') free = false;
      if (!free && style.overflowX !== 'visible') return true;
    }
    return false;
  };
  const wide = [...document.body.querySelectorAll('*')]
    .map((el) => ({el, right: el.getBoundingClientRect().right}))
    .filter(({el, right}) => right > width + 0.5 && !inOwnFrame(el))
    .sort((a, b) => b.right - a.right)
    .slice(0, 4)
    .map(({el, right}) => `<${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}`
      + `${el.className && typeof el.className === 'string' ? '.' + el.className.trim().replace(/\\s+/g, '.') : ''}>`
      + ` right=${Math.round(right)}px "${(el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 50)}"`);
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, lang: document.documentElement.lang,
          wide};
}"""


def _portal_rules(app: Flask) -> list[tuple[str, str, tuple[str, ...]]]:
    """(endpoint, rule, arguments) of every GET page of the portal, from the URL map."""
    rules = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.rule.startswith(NOT_PORTAL) or rule.endpoint in NOT_PAGES:
            continue
        rules.append((rule.endpoint, rule.rule, tuple(sorted(rule.arguments))))
    return sorted(rules, key=lambda item: item[1])


@pytest.fixture
def live(live_server: Any) -> Iterator[Any]:
    """The live server; the credit notes go first when it empties the tables (they point at the invoice they
    correct, which a plain table-by-table delete on SQLite refuses)."""
    yield live_server
    with live_server.app.app_context():
        db.session.execute(delete(Invoice).where(Invoice.credits_invoice_id.is_not(None)))
        db.session.commit()


def _driver_with_data(app: Flask) -> dict[str, Any]:
    """A driver a month into the product: an active, a shipped and a blocked card, sessions over two months, an
    open invoice, a paid one and its credit note, a live session, a start request and the app on a phone."""
    now = utcnow()
    with app.app_context():
        upsert_location(one_connector_location("T1"), partner=None, country_code="NL", party_id="TCP")
        user = make_user(
            email=DRIVER_EMAIL,
            full_name="Eva Peeters-Vandenbroucke",
            street="Koning Albert II-laan 1000 bus 12",
            city="Sint-Pieters-Woluwe",
            postal_code="1150",
            language="nl",
        )
        account = user.account
        for stretch in plan_services.history(account.id):
            stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        give_payment_method(account)
        add_stock(3, start=77_000)
        driver, ops = Actor.of(user), Actor.system("ops")
        active = card_services.ship_card(card_services.order_card(account, driver), ops)
        card_services.activate_card(account, active.visual_number, driver)
        shipped = card_services.ship_card(card_services.order_card(account, driver), ops)
        blocked = card_services.ship_card(card_services.order_card(account, driver), ops)
        card_services.activate_by_operations(blocked, ops)
        card_services.block_card(blocked, BlockReason.LOST, driver)
        start = dt.datetime(2026, 11, 20, 17, tzinfo=dt.UTC)
        charges = [
            rated_session(account.id, active.id, start - dt.timedelta(days=day * 5), kwh=str(9 + day * 11), hours=2.5)
            for day in range(8)
        ]
        db.session.add(
            ChargingSession(
                country_code="NL",
                party_id="TCP",
                ocpi_id="S-PHONE",
                card_id=active.id,
                account_id=account.id,
                status="ACTIVE",
                start_date_time=now - dt.timedelta(minutes=35),
                kwh=Decimal("14.75"),
                location_ocpi_id="LOC-EST",
                evse_uid="E1",
                connector_id="1",
                currency="EUR",
                data={},
                last_updated=now,
            )
        )
        partner = Partner(
            name="Allego",
            country_code="NL",
            party_id="TCP",
            status=PartnerStatus.REGISTERED,
            incoming_token_hash="2" * 64,
            registered_at=now,
            endpoints=[],
        )
        db.session.add(partner)
        db.session.flush()
        command = Command(
            uid="phone-width-start",
            partner_id=partner.id,
            account_id=account.id,
            card_id=active.id,
            command="START_SESSION",
            request={"location_id": "LOC-EST", "evse_uid": "E1"},
            state=CommandState.FAILED,
            result="EVSE_OCCUPIED",
            result_at=now,
        )
        db.session.add(command)
        paid = finalized_invoice(account.id, 8_736, issue_date=dt.date(2026, 10, 1))
        paid.payment_state = PaymentState.PAID
        paid.paid_at = dt.datetime(2026, 10, 9, 8, tzinfo=dt.UTC)
        credit = finalized_invoice(
            account.id, 1_250, issue_date=dt.date(2026, 10, 20), kind=InvoiceKind.CREDIT_NOTE, credits=paid
        )
        credit.snapshot = {**credit.snapshot, "credit_reason": "session_price"}
        open_invoice = finalized_invoice(account.id, 12_345_67, issue_date=dt.date(2026, 11, 1))
        api_tokens.sign_in_device(user, "Pixel 8 Pro van Eva Peeters-Vandenbroucke")
        db.session.flush()
        data = {
            # The values of each URL argument, by its name.
            "arguments": {
                "card_id": [active.id, shipped.id, blocked.id],
                "number": [open_invoice.number, paid.number, credit.number],
                "command_id": [command.id],
                "cdr_id": [charges[0].cdr_id, charges[-1].cdr_id],
                "country_code": ["NL"],
                "party_id": ["TCP"],
                "location_id": ["LOC-EST"],
            },
            "account_id": account.id,
            "user_id": user.id,
            "session_version": user.session_version,
        }
        db.session.commit()
        return data


def _tokens(app: Flask, data: dict[str, Any]) -> dict[str, list[str]]:
    """Fresh signed links for the pages that take a token (reset, confirmation, notification email)."""
    with app.app_context():
        newcomer = make_user(email=f"new.{utcnow().timestamp()}@example.com", confirmed=False)
        tokens = {
            "accounts.reset_password": [links.make_reset_token(data["user_id"], data["session_version"])],
            "accounts.confirm": [links.make_confirm_token(newcomer.id, newcomer.email)],
            "accounts.confirm_notification_email": [
                links.make_notify_token(data["account_id"], "facturen.peeters@example.com")
            ],
        }
        db.session.commit()
        return tokens


def _paths(app: Flask, data: dict[str, Any], tokens: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(name, path) of every portal page, those with ids in their URL built from the test data."""
    paths: list[tuple[str, str]] = []
    with app.test_request_context():
        from flask import url_for

        for endpoint, _rule, arguments in _portal_rules(app):
            if not arguments:
                paths.append((endpoint, url_for(endpoint)))
            elif arguments == ("token",):
                assert endpoint in tokens, f"{endpoint} takes a token: give the test one in _tokens()"
                paths += [(endpoint, url_for(endpoint, token=token)) for token in tokens[endpoint]]
            else:
                known = data["arguments"]
                missing = [name for name in arguments if name not in known]
                assert not missing, f"{endpoint} needs {missing}: give _driver_with_data() such an object"
                values = [known[name] for name in arguments]
                for index in range(max(len(value) for value in values)):
                    kwargs = {
                        name: value[min(index, len(value) - 1)] for name, value in zip(arguments, values, strict=True)
                    }
                    paths.append((f"{endpoint}#{index}", url_for(endpoint, **kwargs)))
    paths.append(("errors.404", "/no-such-page"))
    return paths


def _with_lang(path: str, language: str) -> str:
    return path + ("&" if "?" in path else "?") + f"lang={language}"


def _log_in(page: Any, base_url: str, email: str, language: str, landing: str = "**/dashboard*") -> None:
    page.goto(f"{base_url}/login?lang={language}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form [type=submit]").last.click()
    page.wait_for_url(landing)


def _check_fits(page: Any, who: str, name: str, language: str) -> list[str]:
    found = page.evaluate(OVERFLOW_JS)
    problems = []
    if found["lang"] != language:
        problems.append(f"{who} {language} {name}: the page is in {found['lang']!r}")
    if found["scrollWidth"] > found["innerWidth"] or found["innerWidth"] > PHONE["width"]:
        problems.append(
            f"{who} {language} {name} ({page.url}): {found['scrollWidth']} px wide on a {found['innerWidth']} px"
            f" screen; widest: {'; '.join(found['wide']) or '(none found outside scrolling frames)'}"
        )
    return problems


def _stacks_show_amounts(page: Any, name: str) -> list[str]:
    """In each stacked table (sessions, invoices, invoice lines, unpaid invoices), the amount of every row is on
    screen and the table does not scroll inside its own frame."""
    found = page.evaluate(
        """() => [...document.querySelectorAll('table.table--stack')].map((table) => ({
          scrolls: table.parentElement.scrollWidth > table.parentElement.clientWidth + 0.5,
          amounts: [...table.querySelectorAll('tbody tr > .stack__amount')].map((cell) => {
            const box = cell.getBoundingClientRect();
            return {left: box.left, right: box.right, text: cell.textContent.trim()};
          }),
        }))"""
    )
    problems = []
    for table in found:
        if table["scrolls"]:
            problems.append(f"{name}: a stacked table still scrolls sideways in its frame")
        for amount in table["amounts"]:
            if amount["left"] < 0 or amount["right"] > PHONE["width"] or not amount["text"]:
                problems.append(f"{name}: amount {amount} is not on screen")
    return problems


def _visits(who: str, pages: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pages each person sees: the driver with data every page (the links from emails aside), the new driver
    (no card, no session, no invoice) the pages without ids, the visitor every page, the links from emails last
    (following the confirmation link may sign the newcomer in)."""
    from_email = ("accounts.confirm", "accounts.reset_password")
    if who == "driver":
        return [(name, path) for name, path in pages if not name.startswith(from_email)]
    if who == "newcomer":
        return [(name, path) for name, path in pages if "#" not in name and not name.startswith(from_email)]
    return sorted(pages, key=lambda page: page[0].startswith(from_email))


def test_every_portal_page_fits_a_phone_in_every_language(live, browser, tmp_path):
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    app = live.app
    data = _driver_with_data(app)
    with app.app_context():
        make_user(email=NEWCOMER_EMAIL, full_name="Jean-Baptiste Van den Bossche-Dewilde", language="fr")
        db.session.commit()
    problems: list[str] = []
    visited: set[str] = set()
    for language in LANGUAGES:
        pages = _paths(app, data, _tokens(app, data))
        for who, email in (("visitor", None), ("driver", DRIVER_EMAIL), ("newcomer", NEWCOMER_EMAIL)):
            context = browser.new_context(locale=language, viewport=PHONE, device_scale_factor=2, is_mobile=True)
            page = context.new_page()
            try:
                if email:
                    _log_in(page, live.url, email, language)
                for name, path in _visits(who, pages):
                    page.goto(live.url + _with_lang(path, language))
                    visited.add(name)
                    problems += _check_fits(page, who, name, language)
                    problems += _stacks_show_amounts(page, f"{who} {language} {name}")
                    if language in ("nl", "fr") and name in SCREENSHOTS[who]:
                        page.screenshot(path=str(shots / f"phone-{who}-{name}-{language}.png"), full_page=True)
            finally:
                context.close()
    assert problems == [], "\n".join(problems)
    # Every kind of page was reached, those with ids from the data included.
    assert {"billing.session_history", "billing.invoice_detail#2", "cards.detail#2", "accounts.confirm"} <= visited


def test_the_sessions_and_invoices_stack_with_their_amounts(live, browser, tmp_path):
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    _driver_with_data(live.app)
    context = browser.new_context(locale="nl", viewport=PHONE, is_mobile=True)
    page = context.new_page()
    try:
        _log_in(page, live.url, DRIVER_EMAIL, "nl")
        for path, rows in (("/sessions", 8), ("/invoices", 3), ("/balance", 1)):
            page.goto(f"{live.url}{path}?lang=nl")
            amounts = page.locator("table.table--stack tbody tr > .stack__amount")
            assert amounts.count() >= rows, path
            header = page.locator("table.table--stack thead").first
            assert not header.is_visible() or header.bounding_box()["height"] <= 1, f"{path}: the header row shows"
            first = page.locator("table.table--stack tbody tr").first
            # The row is a card: its labels come from data-label, in the page's language.
            assert "€" in amounts.first.inner_text()
            labels = first.evaluate(
                "row => [...row.querySelectorAll('[data-label]')].map(c => getComputedStyle(c, '::before').content)"
            )
            assert labels and all(label not in ("none", "normal", '""') for label in labels), (path, labels)
        page.goto(f"{live.url}/sessions?lang=nl")
        assert "Locatie" in page.locator("table.table--stack tbody tr").first.evaluate(
            "row => [...row.querySelectorAll('[data-label]')].map(c => c.dataset.label).join('|')"
        )
    finally:
        context.close()
    # On a desktop the same tables are tables: header row shown, one line per session.
    desktop = browser.new_context(locale="nl", viewport=DESKTOP)
    page = desktop.new_page()
    try:
        _log_in(page, live.url, DRIVER_EMAIL, "nl")
        page.goto(f"{live.url}/sessions?lang=nl")
        page.screenshot(path=str(shots / "desktop-sessions-nl.png"), full_page=True)
        assert page.locator("table.table--stack thead").is_visible()
        assert page.locator("table.table--stack tbody tr").first.evaluate("row => getComputedStyle(row).display") == (
            "table-row"
        )
    finally:
        desktop.close()


def test_the_menu_opens_and_closes_with_a_click_the_keyboard_and_without_javascript(live, browser, tmp_path):
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    _driver_with_data(live.app)
    context = browser.new_context(locale="fr", viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        _log_in(page, live.url, DRIVER_EMAIL, "fr")
        toggle = page.locator("[data-menu-toggle]")
        nav = page.locator("#site-nav")
        sessions = nav.locator("a[href='/sessions']")
        assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
        assert toggle.get_attribute("aria-controls") == "site-menu" and toggle.get_attribute("role") == "button"
        assert not sessions.is_visible()

        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        page.screenshot(path=str(shots / "phone-menu-open-fr.png"))
        links = nav.locator("a")
        assert links.count() >= 8
        for index in range(links.count()):
            box = links.nth(index).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        sessions.click()
        page.wait_for_url("**/sessions*")
        assert page.locator("[data-menu-toggle]").get_attribute("aria-expanded") == "false"

        # Keyboard: Enter opens, Tab goes into the menu, Escape closes it and gives the focus back to the button.
        page.locator("[data-menu-toggle]").focus()
        page.keyboard.press("Enter")
        assert page.locator("[data-menu-toggle]").get_attribute("aria-expanded") == "true"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('#site-menu') !== null")
        page.keyboard.press("Escape")
        assert page.locator("[data-menu-toggle]").get_attribute("aria-expanded") == "false"
        assert page.evaluate("document.activeElement.hasAttribute('data-menu-toggle')")
        assert not page.locator("#site-nav a[href='/sessions']").is_visible()
        page.keyboard.press(" ")
        assert page.locator("[data-menu-toggle]").get_attribute("aria-expanded") == "true"
    finally:
        context.close()

    # Without JavaScript the button is a link to the menu, which the page then shows (CSS :target).
    plain = browser.new_context(locale="nl", viewport=PHONE, java_script_enabled=False)
    page = plain.new_page()
    try:
        _log_in(page, live.url, DRIVER_EMAIL, "nl")
        assert not page.locator("#site-nav a[href='/invoices']").is_visible()
        page.locator("[data-menu-toggle]").click()
        assert page.url.endswith("#site-menu")
        assert page.locator("#site-nav a[href='/invoices']").is_visible()
        page.locator(".menu-close").click()
        assert not page.locator("#site-nav a[href='/invoices']").is_visible()
        page.locator("[data-menu-toggle]").click()
        page.locator("#site-nav a[href='/invoices']").click()
        page.wait_for_url("**/invoices")
    finally:
        plain.close()

    # On a desktop there is no menu button: the links are in the bar.
    desktop = browser.new_context(locale="nl", viewport=DESKTOP)
    page = desktop.new_page()
    try:
        _log_in(page, live.url, DRIVER_EMAIL, "nl")
        assert not page.locator("[data-menu-toggle]").is_visible()
        assert not page.locator(".menu-close").is_visible()
        assert page.locator("#site-nav a[href='/sessions']").is_visible()
    finally:
        desktop.close()


def test_the_back_office_main_pages_fit_a_phone(live, browser):
    """The back office is for desks, but an admin on call opens it on a phone: its pages without ids fit too (wide
    tables scroll inside their own frame)."""
    app = live.app
    _driver_with_data(app)
    with app.app_context():
        make_user(Role.ADMIN, email="phone.admin@example.com")
        db.session.commit()
    with app.test_request_context():
        from flask import url_for

        pages = [
            (rule.endpoint, url_for(rule.endpoint))
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/backoffice/")
            and "GET" in (rule.methods or ())
            and not rule.arguments
            and not rule.rule.endswith((".csv", ".json", ".pdf", ".xml"))
        ]
    assert len(pages) >= 10
    problems: list[str] = []
    for language in ("nl", "fr"):
        context = browser.new_context(locale=language, viewport=PHONE, is_mobile=True)
        page = context.new_page()
        try:
            _log_in(page, live.url, "phone.admin@example.com", language, landing="**/backoffice/**")
            for name, path in sorted(pages):
                page.goto(live.url + _with_lang(path, language))
                problems += _check_fits(page, "admin", name, language)
        finally:
            context.close()
    assert problems == [], "\n".join(problems)
