"""What the session cookie and the remember-me cookie carry to say who is logged in.

Flask's session lives in a signed cookie the browser keeps: "logging out" only asks the browser to forget it, and
a copy (a stolen cookie, a shared computer, a proxy log) would keep working. So the cookie carries the user's
``session_version`` too, and the server refuses a token whose version is no longer the user's: bumping the version
(logout, "sign out everywhere", a password change or reset, closing the account) ends every copy at once.

The token is also timestamped and issued anew at each login (Flask-Login puts it into the remember-me cookie as
well): the remember-me cookie changes with every login, and its age is checked here, not only by the expiry the
browser is asked to respect.
"""

from __future__ import annotations

import datetime as dt
import secrets

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_SALT = "accounts.session"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SESSION_SALT)


def _max_age_seconds() -> int:
    duration = current_app.config["REMEMBER_COOKIE_DURATION"]
    return int(duration.total_seconds()) if isinstance(duration, dt.timedelta) else int(duration)


def make_session_token(user_id: int, session_version: int) -> str:
    # The nonce makes two logins within one second (the timestamp's resolution) get different cookies too.
    return _serializer().dumps({"uid": user_id, "v": session_version, "n": secrets.token_urlsafe(6)})


def read_session_token(token: str) -> tuple[int, int] | None:
    """(user id, session version) of a token we issued no longer ago than the remember-me duration, else None."""
    try:
        payload = _serializer().loads(token, max_age=_max_age_seconds())
    except BadSignature:  # SignatureExpired is a BadSignature
        return None
    if not isinstance(payload, dict):
        return None
    user_id, version = payload.get("uid"), payload.get("v")
    if type(user_id) is not int or type(version) is not int:
        return None
    return user_id, version
