"""The plan catalogue as sign-up sees it, plugged into :mod:`app.accounts.plan_choice` by ``app.plans.init_app``
(accounts sits below plans and cannot import them)."""

from __future__ import annotations

from app.accounts.models import Account
from app.accounts.plan_choice import PlanRefusedError
from app.audit.services import Actor
from app.plans import services
from app.plans.models import Plan


class SignupCatalogue:
    default_code = services.DEFAULT_PLAN_CODE

    def choices(self, language: str) -> list[tuple[str, str]]:
        return [(plan.code, plan.name_in(language)) for plan in services.current_plans() if plan.open_to_new]

    def find(self, code: str) -> Plan | None:
        return services.current_version(code)

    def subscribe(self, account: Account, plan: Plan, actor: Actor) -> None:
        try:
            services.subscribe(account, plan, actor)
        except services.PlanError as error:
            raise PlanRefusedError(str(error)) from error
