"""The email that confirms a plan change to the driver, whoever made it (the driver, support, the app).

It names the day the new plan starts as :func:`app.plans.services.effective_day` gives it, the same day the plan
page and the back office print. Prepared here, sent by the caller after its unit of work committed.
"""

from __future__ import annotations

from app.accounts.models import Account
from app.accounts.notices import notice_addresses
from app.accounts.services import PendingEmail
from app.db import utcnow
from app.i18n import N_
from app.plans import services
from app.plans.models import Subscription
from app.public_urls import portal_url


def plan_change_emails(account: Account, subscription: Subscription, *, cancelled: bool = False) -> list[PendingEmail]:
    """One email per notice address of ``account``: its plan is now, or will be from ``subscription``'s first
    day, ``subscription.plan``; with ``cancelled``, the change that was scheduled is dropped and ``subscription``
    (the current stretch) goes on."""
    scheduled = subscription.starts_at > utcnow() and not cancelled
    context: dict[str, object] = {
        "name": account.full_name,
        "plan": subscription.plan.name_in(account.language),
        "effective_day": services.effective_day(subscription),
        "scheduled": scheduled,
        "cancelled": cancelled,
        "plan_url": portal_url("plans.index"),
    }
    subject = (
        N_("Your plan change is cancelled")
        if cancelled
        else N_("Your plan changes soon")
        if scheduled
        else N_("Your plan has changed")
    )
    return [
        PendingEmail(to=address, template="plan_changed", language=account.language, subject=subject, context=context)
        for address in notice_addresses(account.id)
    ]
