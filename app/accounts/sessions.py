"""Server-side revocation of logins: who a session token belongs to, and ending all of a user's sessions.

See :mod:`app.accounts.session_tokens` for what the cookies carry and why.
"""

from __future__ import annotations

from app.accounts.models import User
from app.accounts.session_tokens import read_session_token
from app.extensions import db


def user_for_session_token(token: str) -> User | None:
    """The user a session or remember-me cookie names, if that login was not ended since and the user may still
    log in (a closed or deactivated user is logged out at their next request)."""
    identity = read_session_token(token)
    if identity is None:
        return None
    user_id, version = identity
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.session_version != version:
        return None
    return user


def end_all_sessions(user: User) -> None:
    """Every session and remember-me cookie of ``user`` stops working (the caller commits)."""
    user.session_version += 1
    db.session.flush()
