"""Payments tests run against a real local Stripe emulator (localstripe), started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.payments.emulator import LocalStripe, localstripe, point_app_at, restore_app

__all__ = ["localstripe"]


@pytest.fixture(autouse=True)
def stripe_app(app: Flask, localstripe: LocalStripe) -> Iterator[Flask]:
    """The session app with its Stripe settings pointed at the emulator for the duration of one test."""
    previous = point_app_at(app, localstripe)
    yield app
    restore_app(app, previous)
