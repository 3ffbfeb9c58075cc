"""The notification email: a driver sets a separate address for notices in the app (``PATCH /api/v1/me``) or the
portal's profile; it is used only once confirmed by the signed link mailed to it; and every notice (invoice,
payment messages, card events of dunning) goes where ``accounts.notices.notice_addresses`` says."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts import links, notices
from app.accounts.models import Account
from app.audit.services import Actor
from app.billing.collection.dunning import billing_emails
from app.billing.documents.delivery import deliver_invoice
from app.billing.invoicing.invoices import buyer_emails
from app.billing.models import Invoice
from app.cards.models import CardStatus
from app.customer_care.closure import close_account
from app.extensions import db, limiter
from app.plans import services as plan_services
from tests.api.data import run_month
from tests.api.helpers import SignedIn, call, problem
from tests.billing.sessions import rated_session
from tests.factories import login, make_user
from tests.helpers import Mailbox, submit_form
from tests.roaming.token_fixtures import card_in

NOTICES = "notices@example.com"


def _me(client: FlaskClient, who: SignedIn) -> dict[str, object]:
    answer = call(client, "GET", "/api/v1/me", who)
    assert answer.status_code == 200
    return dict(answer.get_json())


def _confirm(client: FlaskClient, mailbox: Mailbox, address: str) -> None:
    confirmed = client.get(mailbox.last_link(address))
    assert confirmed.status_code == 302 and confirmed.headers["Location"].endswith("/profile")


def test_the_app_sets_an_address_that_counts_once_confirmed(
    client: FlaskClient, driver: SignedIn, mailbox: Mailbox
) -> None:
    me = _me(client, driver)
    assert (me["email"], me["notification_email"], me["notification_email_pending"]) == (
        driver.user.email,
        None,
        None,
    )
    changed = call(client, "PATCH", "/api/v1/me", driver, json={"notification_email": "  Notices@Example.COM "})
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["notification_email"], changed.get_json()["notification_email_pending"]) == (
        None,
        NOTICES,
    )
    [link_mail] = mailbox.to(NOTICES)
    assert link_mail["Subject"] == "Confirm your address for notices"
    # Not confirmed yet: the notices still go to the sign-in address.
    assert notices.notice_addresses(driver.account.id) == [driver.user.email]

    _confirm(client, mailbox, NOTICES)
    me = _me(client, driver)
    assert (me["notification_email"], me["notification_email_pending"]) == (NOTICES, None)
    assert notices.notice_addresses(driver.account.id) == [NOTICES]
    # The link used again changes nothing and still says it is confirmed.
    assert client.get(mailbox.last_link(NOTICES)).status_code == 302
    assert _me(client, driver)["notification_email"] == NOTICES

    # Another address waits for its own link; the confirmed one keeps serving meanwhile.
    call(client, "PATCH", "/api/v1/me", driver, json={"notification_email": "second@example.com"})
    assert notices.notice_addresses(driver.account.id) == [NOTICES]
    # null: back to the sign-in address at once, and the pending link is dead.
    cleared = call(client, "PATCH", "/api/v1/me", driver, json={"notification_email": None})
    assert (cleared.get_json()["notification_email"], cleared.get_json()["notification_email_pending"]) == (None, None)
    client.get(mailbox.last_link("second@example.com"))
    assert _me(client, driver)["notification_email"] is None
    assert notices.notice_addresses(driver.account.id) == [driver.user.email]


def test_bad_addresses_and_stale_or_foreign_links_change_nothing(
    client: FlaskClient, driver: SignedIn, mailbox: Mailbox
) -> None:
    for bad in ("not-an-email", "a@b@example.com", "x" * 250 + "@example.com"):
        refused = problem(
            call(client, "PATCH", "/api/v1/me", driver, json={"notification_email": bad, "city": "Gent"}),
            422,
            "validation_failed",
        )
        assert "notification_email" in refused["errors"], refused
    me = _me(client, driver)
    assert me["notification_email_pending"] is None and me["city"] != "Gent"  # the whole PATCH was refused
    assert mailbox.messages() == []

    call(client, "PATCH", "/api/v1/me", driver, json={"notification_email": "first@example.com"})
    first_link = mailbox.last_link("first@example.com")
    call(client, "PATCH", "/api/v1/me", driver, json={"notification_email": "later@example.com"})
    client.get(first_link)  # asked for another address since: this link no longer confirms anything
    assert _me(client, driver)["notification_email"] is None
    # A sign-up confirmation link (another salt) cannot confirm a notification address, nor a forged one.
    signup = links.make_confirm_token(driver.user.id, "later@example.com")
    for token in (signup, "not-a-token"):
        assert client.get(f"/profile/notification-email/confirm/{token}").status_code == 302
    assert _me(client, driver)["notification_email"] is None
    # Each new address mails a link: the sixth within a minute is refused (RESET_RATE_LIMIT, as the portal's).
    problem(
        call(client, "PATCH", "/api/v1/me", driver, json={"notification_email": "sixth@example.com"}),
        429,
        "too_many_requests",
    )
    assert mailbox.to("sixth@example.com") == []
    limiter.reset()
    # The driver's own sign-in address needs no confirmation: it simply clears the separate one.
    own = call(client, "PATCH", "/api/v1/me", driver, json={"notification_email": driver.user.email.upper()})
    assert (own.get_json()["notification_email"], own.get_json()["notification_email_pending"]) == (None, None)


def test_the_portal_profile_offers_it_too(client: FlaskClient, mailbox: Mailbox) -> None:
    user = make_user(email="portal-driver@example.com")
    login(client, user)
    page = client.get("/profile").get_data(as_text=True)
    assert 'id="notices"' in page and "portal-driver@example.com" in page
    refused = submit_form(
        client, "/profile/notification-email", {"notify-notification_email": "nope"}, form_url="/profile"
    )
    assert refused.status_code == 400 and mailbox.messages() == []
    sent = submit_form(
        client, "/profile/notification-email", {"notify-notification_email": "Home@Example.com"}, form_url="/profile"
    )
    assert sent.status_code == 302
    waiting = client.get("/profile").get_data(as_text=True)
    assert "Waiting for confirmation: home@example.com" in waiting
    _confirm(client, mailbox, "home@example.com")
    shown = client.get("/profile").get_data(as_text=True)
    assert "<strong>home@example.com</strong>" in shown and "Waiting for confirmation" not in shown
    assert db.session.scalar(select(Account.notification_email).where(Account.id == user.account_id)) == (
        "home@example.com"
    )
    # Emptying the field sends the notices to the sign-in address again.
    submit_form(client, "/profile/notification-email", {"notify-notification_email": ""}, form_url="/profile")
    assert notices.notice_addresses(user.account_id) == ["portal-driver@example.com"]


def _with_confirmed_notices(account: Account, address: str = NOTICES) -> None:
    account.notification_email = address
    db.session.flush()


def test_payment_and_card_notices_go_to_the_confirmed_address(driver: SignedIn) -> None:
    second_login = make_user(email="partner@example.com")
    second_login.account_id = driver.account.id
    db.session.flush()
    before = billing_emails(driver.account.id, "payment_failed", "Payment failed")
    assert sorted(email.to for email in before) == sorted([driver.user.email, "partner@example.com"])
    driver.account.notification_email_pending = NOTICES  # set, not confirmed: not used
    assert {email.to for email in billing_emails(driver.account.id, "payment_failed", "x")} == {
        driver.user.email,
        "partner@example.com",
    }
    _with_confirmed_notices(driver.account)
    [after] = billing_emails(driver.account.id, "cards_blocked_unpaid", "Cards blocked")
    assert (after.to, after.template, after.language) == (NOTICES, "cards_blocked_unpaid", driver.account.language)
    assert buyer_emails([driver.account.id]) == {driver.account.id: NOTICES}

    # A closed account keeps no address of its driver and gets no notices.
    close_account(driver.account, Actor.system("test"), reason="test")
    assert driver.account.notification_email is None
    assert notices.notice_addresses(driver.account.id) == []


@pytest.mark.usefixtures("stripe_app")
def test_the_invoice_mail_goes_to_the_confirmed_address(app: Flask, driver: SignedIn, mailbox: Mailbox) -> None:
    for stretch in plan_services.history(driver.account.id):  # on its plan since before October
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    card = card_in(CardStatus.ACTIVE, user=driver.user)
    rated_session(driver.account.id, card.id, dt.datetime(2026, 10, 6, 8, tzinfo=dt.UTC), kwh="14")
    _with_confirmed_notices(driver.account)
    run_month(app, "2026-10")
    invoice = db.session.scalar(select(Invoice).where(Invoice.account_id == driver.account.id))
    assert invoice is not None and invoice.snapshot["buyer"]["email"] == NOTICES
    assert deliver_invoice(invoice.id)["email"] == "1"
    assert [message["Subject"] for message in mailbox.to(NOTICES)] == ["Your invoice"]
    assert mailbox.to(driver.user.email) == []
