"""Fixtures of the API tests: the session app with the API wired, and drivers signed in on a device."""

from __future__ import annotations

import pytest

from tests.api.helpers import SignedIn, sign_in
from tests.billing.conftest import localstripe, stripe_app  # noqa: F401  (payment method and pay-now tests)
from tests.factories import make_user
from tests.roaming.conftest import fake_cpo, partner  # noqa: F401  (the CPO app tokens are pushed to)


@pytest.fixture
def driver(db_session: object) -> SignedIn:
    """A driver (Belgian, English) signed in on one device."""
    return sign_in(make_user(full_name="Ann Driver"))


@pytest.fixture
def other_driver(db_session: object) -> SignedIn:
    return sign_in(make_user(full_name="Bob Other"))
