"""Plans (our price on top of the CPO's) and each account's plan history (subscriptions)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Wire plans into the app: sign-up (in accounts, below plans) offers the plans and starts a new account
    on the chosen one through the catalogue plugged in here."""
    from app.accounts.plan_choice import plug_in_plan_catalogue
    from app.plans.signup import SignupCatalogue

    plug_in_plan_catalogue(SignupCatalogue())
