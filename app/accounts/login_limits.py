"""The login's rate limit per account: the email typed, whatever address the attempts come from.

Counting per client address only lets an attacker with many addresses (a botnet, a cloud) try a password per
address on one driver's account. The key is a hash of the normalised email: the limiter's storage (Redis in
production) then holds no addresses in clear.
"""

from __future__ import annotations

import hashlib

from flask import request

from app.accounts.models import normalize_email

# One counter per account for every door that signs in with a password (the portal's login, the app's
# /api/v1/auth/token): a limit shared under this scope, so splitting the guesses between doors gains nothing.
LOGIN_ACCOUNT_SCOPE = "login-account"


def login_account_key() -> str:
    return account_key_for(request.form.get("email") or "")


def account_key_for(email: str) -> str:
    """The limiter key of the attempts on ``email`` (with :data:`LOGIN_ACCOUNT_SCOPE`)."""
    return "login-account:" + hashlib.sha256(normalize_email(email).encode()).hexdigest()
