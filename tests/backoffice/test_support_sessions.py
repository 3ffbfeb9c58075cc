"""Support answers "why did this session cost X?" on one page: the account page lists the driver's sessions and
CDRs (where, which operator and EVSE, when in the seller's time zone, kWh, operator price, our fees, VAT, total,
invoice, hold), newest first and paged, each one click away from its price breakdown."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from sqlalchemy import event

from app.accounts.models import Role
from app.audit.services import Actor
from app.billing import session_history
from app.billing.models import SessionHold
from app.billing.runs import holds
from app.extensions import db
from tests.billing.conftest import finalized_invoice
from tests.customer_care.charging import OPERATOR_NAME, charge_once, driver_with_card, publish_network
from tests.customer_care.pages import page_text
from tests.factories import login, make_user
from tests.roaming.conftest import ocpi, partner  # noqa: F401  (fixtures)

OCT_14 = dt.datetime(2026, 10, 14, 17, 0, tzinfo=dt.UTC)  # 19:00 in Brussels (summer time)


def _support(client, role: Role = Role.SUPPORT):  # type: ignore[no-untyped-def]
    staff = make_user(role)
    login(client, staff)
    return staff


def test_account_page_lists_sessions_with_place_operator_times_and_the_price_parts(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card(full_name="Eva Peeters")
    charged = charge_once(ocpi, card, "S-1", OCT_14, kwh=20)
    assert charged and charged.charge is not None
    _support(client)

    page = client.get(f"/backoffice/support/accounts/{user.account.id}").get_data(as_text=True)

    sessions = page_text(page[page.index("data-sessions") :])
    assert "Station Gent-Sint-Pieters, Gent" in sessions
    assert OPERATOR_NAME in sessions  # the CPO's name, not "NL*TCP"
    assert "BE*TCP*E0007" in sessions  # the printed EVSE id
    assert "14 Oct 2026, 19:00–20:00" in sessions  # Brussels time, day first
    assert "Times in Belgium Time" in page_text(page)
    charge = charged.charge
    # 20 kWh × 0.39 + 0.25 = 8.05 operator price; pay as you go: 20 × 0.05 + 0.35 = 1.35 fees; VAT 21 %.
    assert charge.cpo_cost_excl_vat == Decimal("8.05") and charge.driver_excl_vat == Decimal("9.40")
    for figure in ("€11.37", "€8.05", "€1.35", "€1.97", "20.000"):
        assert figure in sessions, figure
    assert "On the next invoice" in sessions
    assert f"/backoffice/support/accounts/{user.account.id}/sessions/{charged.cdr.id}" in page


def test_invoice_number_links_to_finance_only_for_an_agent_who_may_see_it(app, client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    charged = charge_once(ocpi, card, "S-INV", OCT_14, kwh=10)
    invoice = finalized_invoice(user.account.id)
    from app.billing.models import InvoiceLine, LineKind

    db.session.add(
        InvoiceLine(
            invoice_id=invoice.id,
            position=1,
            kind=LineKind.SESSION,
            session_charge_id=charged.charge.id,
            description="session",
            amount_minor=530,
            vat_rate=Decimal("21"),
        )
    )
    db.session.commit()
    _support(client)
    url = f"/backoffice/support/accounts/{user.account.id}"
    support_page = client.get(url).get_data(as_text=True)
    assert invoice.number in support_page
    assert f"/backoffice/finance/invoices/{invoice.number}" not in support_page
    assert "Invoiced" in page_text(support_page[support_page.index("data-sessions") :])

    other = app.test_client()
    _support(other, Role.ADMIN)  # holds support and finance
    admin_page = other.get(url).get_data(as_text=True)
    assert f"/backoffice/finance/invoices/{invoice.number}" in admin_page


def test_held_adjusted_and_written_off_sessions_show_what_is_billed_as_the_driver_sees_it(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    adjusted = charge_once(ocpi, card, "S-ADJ", OCT_14, kwh=40)
    written_off = charge_once(ocpi, card, "S-OFF", OCT_14 + dt.timedelta(days=1), kwh=30)
    held = charge_once(ocpi, card, "S-HELD", OCT_14 + dt.timedelta(days=2), kwh=35)
    finance = Actor.system("finance-test")
    for charged, decide in (
        (adjusted, lambda hold: holds.adjust(hold, finance, "goodwill", "10.00")),
        (written_off, lambda hold: holds.write_off(hold, finance, "test session")),
        (held, None),
    ):
        hold = SessionHold(session_charge_id=charged.charge.id, reasons=["energy over 25 kWh"])
        db.session.add(hold)
        db.session.flush()
        if decide:
            decide(hold)
    db.session.commit()
    _support(client)

    page = client.get(f"/backoffice/support/accounts/{user.account.id}").get_data(as_text=True)

    rows = {match[0]: page_text(match[1]) for match in re.findall(r'data-cdr="(\d+)">(.*?)</tr>', page, re.S)}
    assert "€10.00" in rows[str(adjusted.cdr.id)] and "Adjusted by finance" in rows[str(adjusted.cdr.id)]
    assert "Correction" in rows[str(adjusted.cdr.id)]
    assert "€0.00" in rows[str(written_off.cdr.id)] and "Not charged" in rows[str(written_off.cdr.id)]
    assert "Under review" in rows[str(held.cdr.id)]
    # The same totals as the driver's own session history (the billing rule, not a second one).
    driver_view = session_history.session_page(user.account.id, session_history.SessionFilters(), 1).sessions
    from app.customer_care.charging_history import cdr_page

    ours = cdr_page(user.account.id).lines
    assert [line.total for line in ours] == [line.total for line in driver_view]
    assert [line.state for line in ours] == [line.state for line in driver_view]
    assert [line.correction for line in ours] == [line.correction for line in driver_view]
    assert [line.state for line in ours] == ["under_review", "not_charged", "to_invoice"]


def test_sessions_are_paged_newest_first_in_a_fixed_number_of_queries(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    for day in range(27):
        charge_once(ocpi, card, f"S-{day:02d}", OCT_14 - dt.timedelta(days=day), kwh=5 + day, authorize=day % 2 == 0)
    db.session.commit()
    _support(client)
    url = f"/backoffice/support/accounts/{user.account.id}"

    def statements(query_string: dict[str, str]) -> tuple[str, int]:
        seen: list[str] = []

        def count(*_args: object) -> None:
            seen.append("x")

        engine = db.session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            html = client.get(url, query_string=query_string).get_data(as_text=True)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return html, len(seen)

    first, first_count = statements({})
    rows = re.findall(r'data-cdr="(\d+)"', first)
    assert len(rows) == 25
    assert "14 Oct 2026, 19:00" in page_text(first[first.index("data-sessions") :].split("</tr>", 2)[1])  # newest first
    assert "sessions=2#sessions" in first
    second, second_count = statements({"sessions": "2"})
    assert len(re.findall(r'data-cdr="(\d+)"', second)) == 2
    assert "sessions=1#sessions" in second
    # 25 rows or 2 rows: the same statements (no query per session).
    assert first_count == second_count


def test_a_session_without_its_cdr_yet_and_a_cdr_that_could_not_be_priced_are_shown(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    charge_once(ocpi, card, "S-NOW", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20), kwh=3, send_cdr=False)
    # A CDR from before the driver's plan began has no plan to be priced with: rating keeps why.
    unpriced = charge_once(ocpi, card, "S-EARLY", dt.datetime(2025, 12, 20, 9, 0, tzinfo=dt.UTC), kwh=12)
    assert unpriced is not None and unpriced.charge is None
    db.session.commit()
    _support(client)

    page = page_text(client.get(f"/backoffice/support/accounts/{user.account.id}").get_data(as_text=True))

    assert "Sessions without a charge detail record yet" in page
    assert "Charging" in page  # ACTIVE, in words
    assert "Not priced yet" in page and "had no plan" in page


def test_another_accounts_session_is_not_found(client, ocpi, partner):  # noqa: F811
    publish_network(ocpi, partner)
    user, card = driver_with_card()
    other, _card = driver_with_card()
    charged = charge_once(ocpi, card, "S-MINE", OCT_14, kwh=10)
    db.session.commit()
    _support(client)
    assert client.get(f"/backoffice/support/accounts/{user.account.id}/sessions/{charged.cdr.id}").status_code == 200
    assert client.get(f"/backoffice/support/accounts/{other.account.id}/sessions/{charged.cdr.id}").status_code == 404
    assert client.get(f"/backoffice/support/accounts/{user.account.id}/sessions/999999").status_code == 404
