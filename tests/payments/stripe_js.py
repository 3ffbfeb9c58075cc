"""What Stripe.js does in the browser, done from the test: confirm a SetupIntent at the emulator with the
publishable key and the client secret (the same request localstripe's fake Stripe.js sends)."""

from __future__ import annotations

from typing import Any

import requests

from tests.payments.emulator import PUBLISHABLE_KEY, LocalStripe

VISA = "4242424242424242"
VISA_DECLINED = "4000000000000002"  # localstripe: attaching is declined (402 card_declined)
VISA_3DS = "4000002500003155"  # localstripe: requires_action (3-D Secure)
IBAN_OK = "DE89370400440532013000"
IBAN_FAILS = "DE62370400440532013001"  # localstripe: charging is declined (setup succeeds)


def card(number: str = VISA, exp_month: int = 12, exp_year: int = 2034) -> dict[str, Any]:
    return {
        "type": "card",
        "card": {"number": number, "exp_month": str(exp_month), "exp_year": str(exp_year), "cvc": "123"},
        "billing_details": {"name": "Jan Janssens"},
    }


def sepa(iban: str = IBAN_OK, email: str = "jan@example.com") -> dict[str, Any]:
    return {
        "type": "sepa_debit",
        "sepa_debit": {"iban": iban},
        "billing_details": {"name": "Jan Janssens", "email": email},
    }


def confirm_setup_intent(
    emulator: LocalStripe, client_secret: str, payment_method_data: dict[str, Any]
) -> requests.Response:
    setup_intent_id = client_secret.split("_secret_")[0]
    return requests.post(
        f"{emulator.url}/v1/setup_intents/{setup_intent_id}/confirm",
        json={
            "key": PUBLISHABLE_KEY,
            "use_stripe_sdk": True,
            "client_secret": client_secret,
            "payment_method_data": payment_method_data,
        },
        timeout=10,
    )
