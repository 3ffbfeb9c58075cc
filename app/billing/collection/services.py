"""Collecting finalized invoices through Stripe PaymentIntents, paying the open balance, refunding credit notes.

The entry point of collection for the rest of billing and the doors; the work is done beside it:

- :mod:`~app.billing.collection.amounts`: what was credited, received and is still due on an invoice;
- :mod:`~app.billing.collection.attempts`: an attempt's ``Payment`` row and applying what Stripe says of it
  (outcomes, what a success counts for, flagged payments);
- :mod:`~app.billing.collection.collect`: one PaymentIntent per attempt (idempotency keys), and after a Stripe
  outage the look-up that finds what a lost try made (:mod:`~app.billing.collection.outages` keeps the outage);
- :mod:`~app.billing.collection.pay_now`: the open balance and "pay now";
- :mod:`~app.billing.collection.refunds`: credit notes of paid invoices given back through Stripe.

Side effects
    Services flush, never commit. Emails are returned in ``result.emails``; the caller commits and then calls
    :func:`app.accounts.services.send_pending` (``payment_tasks.collect_invoice_task`` does all of that).
"""

from __future__ import annotations

from app.billing.collection.amounts import (
    CHARGE,
    COLLECTABLE_STATES,
    REFUND,
    Received,
    amount_due_minor,
    received_minor,
    received_of,
)
from app.billing.collection.attempts import (
    AUTH_REQUIRED_MESSAGE,
    FAILED_STATUSES,
    CollectionError,
    Outcome,
    apply_status,
    payment_by_stripe_id,
    payments_of,
)
from app.billing.collection.collect import NO_METHOD_MESSAGE, collect_invoice
from app.billing.collection.pay_now import PayNowResult, open_balance_minor, open_invoices, pay_open_balance

# What callers outside ``collection`` (the doors, delivery, the views, the tests) use.
__all__ = [
    "AUTH_REQUIRED_MESSAGE",
    "CHARGE",
    "COLLECTABLE_STATES",
    "FAILED_STATUSES",
    "NO_METHOD_MESSAGE",
    "REFUND",
    "CollectionError",
    "Outcome",
    "PayNowResult",
    "Received",
    "amount_due_minor",
    "apply_status",
    "collect_invoice",
    "open_balance_minor",
    "open_invoices",
    "pay_open_balance",
    "payment_by_stripe_id",
    "payments_of",
    "received_minor",
    "received_of",
]
