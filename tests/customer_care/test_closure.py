"""Data export and account closure, by the driver and by support."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from app.accounts.models import Role, User
from app.audit.models import AuditEntry
from app.audit.services import Actor
from app.cards import services as card_services
from app.cards.models import BlockReason, CardStatus, TokenUpdate
from app.customer_care.closure import anonymise_expired
from app.extensions import db
from app.plans import services as plan_services
from tests.factories import PASSWORD, login, make_user
from tests.helpers import submit_form


def test_driver_downloads_all_their_data(client):
    user = make_user(full_name="Anna Data")
    card_services.issue_app_token(user.account, Actor.of(user))
    login(client, user)
    response = client.get("/account/export.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.data)
    assert data["account"]["full_name"] == "Anna Data"
    assert data["logins"][0]["email"] == user.email
    assert data["cards"][0]["token"]["type"] == "APP_USER"
    assert data["plans"][0]["plan"] == "payg"


def test_driver_closes_account(client):
    user = make_user(full_name="Bart Bye")
    card = card_services.issue_app_token(user.account, Actor.of(user))
    order = card_services.order_card(user.account, Actor.of(user), label="spare")
    login(client, user)
    wrong = submit_form(client, "/account/close", {"password": "wrong-password", "confirm": "y"})
    assert wrong.status_code == 200 and user.account.closed_at is None
    response = submit_form(client, "/account/close", {"password": PASSWORD, "confirm": "y"})
    assert response.status_code == 302
    account = user.account
    assert account.closed_at is not None
    assert card.status == CardStatus.BLOCKED and card.block_reason == BlockReason.CLOSED
    assert order.status == CardStatus.EXPIRED and order.label is None
    assert (
        db.session.scalar(
            select(TokenUpdate).where(TokenUpdate.card_id == card.id).order_by(TokenUpdate.id.desc())
        ).token["valid"]
        is False
    )
    assert plan_services.plan_at(account.id, dt.datetime.now(dt.UTC)) is None
    assert user.email.endswith("@closed.invalid") and not user.active
    # The billing identity stays for the retention period.
    assert account.full_name == "Bart Bye"
    assert client.get("/dashboard").status_code == 302
    # Cards of a closed account never come back, even by support.
    import pytest

    from app.cards.lifecycle import TransitionError

    with pytest.raises(TransitionError):
        card_services.unblock_card(card, Actor.system("support"))


def test_support_closes_on_request_and_retention_then_anonymises(client):
    user = make_user(full_name="Carla Cease", country="NL")
    staff = make_user(Role.SUPPORT)
    login(client, staff)
    page = f"/backoffice/support/accounts/{user.account.id}"
    export = client.get(f"{page}/export.json")
    assert json.loads(export.data)["account"]["full_name"] == "Carla Cease"
    submit_form(
        client, f"{page}/close", {"note-note": "letter of 3 Nov", "confirm": "y"}, form_url=page, prefix="note-"
    )
    account = user.account
    assert account.closed_at is not None
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "account.close"))
    assert entry.reason == "letter of 3 Nov" and entry.actor_label == staff.email

    assert anonymise_expired(now=account.closed_at + dt.timedelta(days=365 * 6)) == 0
    assert anonymise_expired(now=account.closed_at + dt.timedelta(days=365 * 7 + 2)) == 1
    assert account.full_name.startswith("Anonymised") and account.street == "-"
    assert db.session.get(User, user.id).email.endswith("@closed.invalid")
