"""The plan catalogue as sign-up sees it, plugged into :mod:`app.accounts.plan_choice` by ``app.plans.init_app``
(accounts sits below plans and cannot import them)."""

from __future__ import annotations

from app.accounts.models import Account
from app.accounts.plan_choice import PlanOffer, PlanRefusedError
from app.audit.services import Actor
from app.plans import services
from app.plans.models import Plan


class SignupCatalogue:
    default_code = services.DEFAULT_PLAN_CODE

    def choices(self, language: str) -> list[tuple[str, str]]:
        return [(plan.code, plan.name_in(language)) for plan in services.current_plans() if plan.open_to_new]

    def offers(self, language: str) -> list[PlanOffer]:
        return [
            PlanOffer(
                code=plan.code,
                name=plan.name_in(language),
                description=(plan.descriptions or {}).get(language) or (plan.descriptions or {}).get("en") or "",
                currency=plan.currency,
                monthly_fee=plan.monthly_fee,
                markup_per_kwh=plan.markup_per_kwh,
                markup_percent=plan.markup_percent,
                session_fee=plan.session_fee,
                session_fee_cap_per_month=plan.session_fee_cap_per_month,
                business_only=plan.business_only,
            )
            for plan in services.current_plans()
            if plan.open_to_new
        ]

    def find(self, code: str) -> Plan | None:
        return services.current_version(code)

    def subscribe(self, account: Account, plan: Plan, actor: Actor) -> None:
        try:
            services.subscribe(account, plan, actor)
        except services.PlanError as error:
            raise PlanRefusedError(*error.args) from error
