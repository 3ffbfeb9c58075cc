"""Rating fixtures: a driver whose plan started before the test sessions, with an app token."""

from __future__ import annotations

import datetime as dt

import pytest

from app.audit.services import Actor
from app.cards import services as card_services
from app.plans import services as plan_services
from tests.factories import make_user


@pytest.fixture
def driver(db_session):  # type: ignore[no-untyped-def]
    user = make_user()
    for stretch in plan_services.history(user.account.id):  # start the plan before the test sessions
        stretch.starts_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    card = card_services.issue_app_token(user.account, Actor.of(user))
    return user.account, card
