"""Opening the confirmation link of the sign-up email: it confirms the address and signs the driver in.

It signs in only the browser that signed up (or asked for the link) with that address: anywhere else it confirms
the address and asks for the password. Otherwise anyone could sign a victim into an account of theirs by sending
them its link (login CSRF), and the victim might then save their own payment card on it.
The link signs in only once: the first time it confirms the address. Opened again it signs nobody in (a forwarded
or leaked mail must not open the account) and says so; the driver logs in with the password. When someone else is
signed in in this browser nothing changes: that person logs out and the link is opened again. An expired or
damaged link changes nothing either; the driver asks for a new one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from app.accounts import links
from app.accounts.models import User
from app.db import utcnow
from app.extensions import db


class ConfirmOutcome(enum.StrEnum):
    SIGNED_IN = "signed_in"  # confirmed now: the view signs this user in
    CONFIRMED = "confirmed"  # confirmed now, in another browser than the sign-up's: log in with the password
    ALREADY_USED = "already_used"  # the address was confirmed before: log in with the password
    OTHER_USER_SIGNED_IN = "other_user_signed_in"  # log out first, then open the link again
    EXPIRED = "expired"  # ask for a new link
    INVALID = "invalid"  # ask for a new link


@dataclass(frozen=True)
class ConfirmResult:
    outcome: ConfirmOutcome
    user: User | None = None  # the user of the link, when it is a genuine one


def open_confirmation_link(
    token: str, signed_in_user_id: int | None, signing_up_email: str | None = None
) -> ConfirmResult:
    """Confirm the address of ``token`` if it may be: flushes, the caller commits and (on ``SIGNED_IN``) signs
    the user in. ``signed_in_user_id`` is whoever is signed in in this browser (None: nobody);
    ``signing_up_email`` the address this browser signed up or asked for a link with (its signed session)."""
    payload, why = links.read_confirm_token_or_why(token)
    if payload is None:
        return ConfirmResult(ConfirmOutcome.EXPIRED if why == "expired" else ConfirmOutcome.INVALID)
    user = db.session.get(User, payload.get("uid"))
    # A link for an address the user has since changed, or for a closed account, is no link any more.
    if user is None or user.email != payload.get("email") or not user.active:
        return ConfirmResult(ConfirmOutcome.INVALID)
    if user.email_confirmed_at is not None:
        return ConfirmResult(ConfirmOutcome.ALREADY_USED, user)
    if signed_in_user_id is not None and signed_in_user_id != user.id:
        return ConfirmResult(ConfirmOutcome.OTHER_USER_SIGNED_IN, user)
    user.email_confirmed_at = utcnow()
    if signing_up_email != user.email:
        db.session.flush()
        return ConfirmResult(ConfirmOutcome.CONFIRMED, user)
    user.last_login_at = user.email_confirmed_at
    db.session.flush()
    return ConfirmResult(ConfirmOutcome.SIGNED_IN, user)
