"""The Stripe webhook's tests use the billing fixtures: a real localstripe emulator and a catcher of the events
it signs and sends."""

from __future__ import annotations

from tests.billing.conftest import localstripe, stripe_app, webhook_catcher

__all__ = ["localstripe", "stripe_app", "webhook_catcher"]
