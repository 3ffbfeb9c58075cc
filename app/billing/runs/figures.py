"""The preview's figures: each account's month composed by the code that makes the invoices, then added up per
VAT rate and per plan, so the preview and the invoices agree to the cent."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.accounts.models import Account
from app.billing.invoicing.composition import compose_many, vat_summary
from app.billing.models import LineKind
from app.billing.runs.items import MAX_BATCH
from app.extensions import db
from app.payments.models import PaymentMethod, PaymentMethodStatus
from app.plans.models import Plan

# Failed accounts listed by name in a preview (all are counted).
_LISTED = 200


def _euros(minor: int) -> str:
    return str(Decimal(minor).scaleb(-2))


@dataclass
class FigureSums:
    """The preview's sums over some accounts, in minor units: added up part by part, in any order."""

    per_rate: dict[Decimal, list[int]] = field(default_factory=dict)  # [session lines, excl., VAT, CPO, margin]
    per_plan: dict[tuple[str, int], list[int]] = field(default_factory=dict)  # [session lines, excl., fees]
    held: int = 0
    subscriptions: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # accounts that could not be composed, and why

    def add(self, other: FigureSums) -> None:
        _add_sums(self.per_rate, other.per_rate)
        _add_sums(self.per_plan, other.per_plan)
        self.held += other.held
        self.subscriptions += other.subscriptions
        self.failed.update(other.failed)


def _add_sums(into: dict[Any, list[int]], more: dict[Any, list[int]]) -> None:
    for key, sums in more.items():
        target = into.setdefault(key, [0] * len(sums))
        for index, value in enumerate(sums):
            target[index] += value


# What composes some accounts' sums elsewhere (other processes): given the period and the parts (account ids,
# and those of them already known to fail), the parts' sums in any order.
PartsRunner = Callable[[str, list[tuple[list[int], dict[int, str]]]], Iterable[FigureSums]]
# Accounts per part handed to another process: 20 batches, so a part's start-up is noise.
PART_SIZE = 20 * MAX_BATCH


def figure_sums(period: str, account_ids: list[int], failed: dict[int, str]) -> FigureSums:
    """The sums of ``account_ids`` (those in ``failed`` left out; those that fail now are added to the sums'
    ``failed``), composed in batches by the code that makes the invoices. Reads only."""
    plans = {plan.id: (plan.code, plan.version) for plan in db.session.scalars(select(Plan))}
    sums = FigureSums()
    newly_failed: dict[int, str] = {}
    billable = [account_id for account_id in account_ids if account_id not in failed]
    for start in range(0, len(billable), MAX_BATCH):
        batch = list(db.session.scalars(select(Account).where(Account.id.in_(billable[start : start + MAX_BATCH]))))
        for composition in compose_many(batch, period, hold_outliers=False, failed=newly_failed):
            sums.held += len(composition.held)
            by_rate: dict[Decimal, list[Any]] = {}
            for line in composition.lines:
                by_rate.setdefault(line.vat_rate, []).append(line)
                if line.kind == LineKind.SUBSCRIPTION:
                    sums.subscriptions += 1
                    key = (str(line.details["plan"]), int(line.details["version"]))
                    sums.per_plan.setdefault(key, [0, 0, 0])[2] += line.amount_minor
                elif line.plan_id in plans:
                    plan_sums = sums.per_plan.setdefault(plans[line.plan_id], [0, 0, 0])
                    plan_sums[0] += 1
                    plan_sums[1] += line.amount_minor
            for rate, lines in by_rate.items():
                rate_sums = sums.per_rate.setdefault(rate, [0, 0, 0, 0, 0])
                rate_sums[0] += sum(1 for line in lines if line.kind != LineKind.SUBSCRIPTION)
                rate_sums[1] += sum(line.amount_minor for line in lines)
                rate_sums[2] += sum(entry["vat"] for entry in vat_summary(lines))  # rounded per invoice, as issued
                rate_sums[3] += sum(line.cpo_cost_minor for line in lines)
                rate_sums[4] += sum(line.amount_minor - line.cpo_cost_minor for line in lines)
        for account in batch:  # a month of a million accounts: keep the session's identity map small
            db.session.expunge(account)
    sums.failed = newly_failed
    return sums


def preview_figures(
    period: str, accounts: list[int], failed: dict[int, str], parts: PartsRunner | None = None
) -> dict[str, Any]:
    """The preview's figures, computed by the code that makes the invoices: each account's month is composed
    (``compose_many``, as finalizing will: subscription fees prorated, held and written-off sessions left out,
    adjusted ones at finance's amount, every line rounded once, VAT per invoice) and the compositions are added
    up. So the preview and the invoices agree to the cent (finance once saw €270.88 previewed and €235.90
    charged after adjusting a held session). Accounts whose month cannot be composed are added to ``failed``
    (account id → why) and left out. Composed in batches: bounded memory, a handful of queries each.

    ``parts``: compose parts of the accounts elsewhere (:mod:`app.billing.runs.parallel`: other processes, which
    see only what is committed). Measured at 1,000,000 accounts: a first run of nine months' sessions (9.4 M lines)
    spent 13.5 min here in one process; a month of 1.4 M sessions 164 s in two."""
    if parts is None:
        total = figure_sums(period, accounts, failed)
    else:
        total = FigureSums()
        work = [
            (chunk, {account_id: failed[account_id] for account_id in chunk if account_id in failed})
            for chunk in (accounts[start : start + PART_SIZE] for start in range(0, len(accounts), PART_SIZE))
        ]
        for part in parts(period, work):
            total.add(part)
    failed.update(total.failed)
    per_rate, per_plan, held, subscriptions = total.per_rate, total.per_plan, total.held, total.subscriptions
    billable = [account_id for account_id in accounts if account_id not in failed]  # composing failed some
    with_method = set(
        db.session.scalars(select(PaymentMethod.account_id).where(PaymentMethod.status == PaymentMethodStatus.ACTIVE))
    )
    note = "amounts as the invoices will charge them: composed by the invoice code, each line rounded once"
    if failed:
        note += (
            f"; {len(failed)} account(s) left out of these figures: they cannot be invoiced as they stand "
            "(failed_accounts says why); finalizing reports them failed until their data is fixed"
        )
    return {
        "accounts": len(billable),
        "sessions": sum(sums[0] for sums in per_rate.values()),
        "subscriptions": subscriptions,
        "per_vat_rate": [
            {
                "rate": str(rate.normalize()),
                "sessions": n,
                "excl_vat": _euros(excl),
                "vat": _euros(vat),
                "cpo_cost": _euros(cpo),
                "margin": _euros(margin),
            }
            for rate, (n, excl, vat, cpo, margin) in sorted(per_rate.items())
        ],
        "per_plan": [
            {"plan": f"{code} v{version}", "sessions": n, "excl_vat": _euros(excl), "subscription_fees": _euros(fees)}
            for (code, version), (n, excl, fees) in sorted(per_plan.items())
        ],
        "held_sessions": held,
        "accounts_without_payment_method": len([a for a in billable if a not in with_method]),
        "accounts_failed": len(failed),
        "failed_accounts": [
            {"account_id": account_id, "reason": reason} for account_id, reason in sorted(failed.items())[:_LISTED]
        ],
        "note": note,
    }
