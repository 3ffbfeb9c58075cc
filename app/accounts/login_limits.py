"""The login's rate limit per account: the email typed, whatever address the attempts come from.

Counting per client address only lets an attacker with many addresses (a botnet, a cloud) try a password per
address on one driver's account. The key is a hash of the normalised email: the limiter's storage (Redis in
production) then holds no addresses in clear.
"""

from __future__ import annotations

import hashlib

from flask import request

from app.accounts.models import normalize_email


def login_account_key() -> str:
    email = normalize_email(request.form.get("email") or "")
    return "login-account:" + hashlib.sha256(email.encode()).hexdigest()
