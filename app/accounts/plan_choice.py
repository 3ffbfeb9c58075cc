"""The plan a new driver starts on: sign-up asks, the plans package answers.

Sign-up offers the plans and starts the new account on the chosen one. Plans sit above accounts in the layers (a
subscription belongs to an account; the plan page uses the portal's access rules), so accounts cannot import
them. Instead accounts names here what sign-up needs, and ``app.plans.init_app`` plugs the plan catalogue in
when the app is created, the way billing plugs its rule into roaming's ``STANDING_CHECKS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from app.accounts.models import Account
from app.audit.services import Actor


class PlanRefusedError(ValueError):
    """The chosen plan may not start for this account (closed to new subscribers, business accounts only...)."""


@dataclass(frozen=True)
class PlanOffer:
    """A plan as sign-up compares it: what it costs on top of the operator's price, in the page's language."""

    code: str
    name: str
    description: str
    currency: str
    monthly_fee: Decimal
    markup_per_kwh: Decimal
    markup_percent: Decimal
    session_fee: Decimal
    session_fee_cap_per_month: Decimal | None
    business_only: bool


class PlanCatalogue(Protocol):
    """What sign-up needs of the plans (``app.plans.signup.SignupCatalogue`` is the one plugged in)."""

    @property
    def default_code(self) -> str:
        """The plan a driver gets when nobody chose one (operations, demo data)."""

    def choices(self, language: str) -> list[tuple[str, str]]:
        """``(code, name in language)`` of the plans open to new drivers, cheapest first."""

    def offers(self, language: str) -> list[PlanOffer]:
        """The same plans as :meth:`choices`, with their prices, for the sign-up page's comparison."""

    def find(self, code: str) -> Any | None:
        """The current version of the plan ``code``, or None when there is no such plan."""

    def subscribe(self, account: Account, plan: Any, actor: Actor) -> None:
        """Start ``account`` on ``plan`` (from :meth:`find`) now; :class:`PlanRefusedError` if it may not."""


_catalogue: PlanCatalogue | None = None


def plug_in_plan_catalogue(catalogue: PlanCatalogue) -> None:
    """Called by ``app.plans.init_app``; the last catalogue plugged in is the one sign-up uses."""
    global _catalogue
    _catalogue = catalogue


def plan_catalogue() -> PlanCatalogue:
    if _catalogue is None:
        raise RuntimeError("no plan catalogue plugged in: create_app calls app.plans.init_app")
    return _catalogue
