"""The error a billing service raises when it refuses what it was asked, in words for the person who asked (the
CLI prints it, the back office and the portal show it). Callers outside invoicing import it from
:mod:`app.billing.invoicing.invoices`."""

from __future__ import annotations


class BillingError(ValueError):
    pass
