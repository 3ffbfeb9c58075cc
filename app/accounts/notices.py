"""Where an account's notices go: invoices, payment failures and reminders, card events.

:func:`notice_addresses` is the one answer, used by every mail of that kind: the account's confirmed notification
address when the driver set one, else the sign-in addresses of its active driver logins. A driver sets the
notification address in the portal's profile or through the app API (``PATCH /api/v1/me``); it is used only once
confirmed by the signed link we mail to it (as sign-up confirms the sign-in address), so a typo, or somebody
else's address, never receives an invoice. Until then the previous address (or the sign-in ones) keeps serving.

Services flush, never commit; the confirmation mail is returned as a pending email to send after commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.accounts import links
from app.accounts.models import Account, Role, User, normalize_email
from app.accounts.services import AccountError, PendingEmail
from app.extensions import db
from app.i18n import N_
from app.public_urls import portal_url

EMAIL_MAX_LENGTH = 254


def notice_addresses(account_id: int) -> list[str]:
    """The addresses of the account's notices (empty for an unknown or anonymised account)."""
    return notice_addresses_of([account_id]).get(account_id, [])


def notice_addresses_of(account_ids: Iterable[int]) -> dict[int, list[str]]:
    """:func:`notice_addresses` of many accounts in two queries (the invoice run's batches). Accounts without any
    address (anonymised, or no active driver login) are absent."""
    wanted = list(dict.fromkeys(account_ids))
    if not wanted:
        return {}
    found: dict[int, list[str]] = {}
    for account_id, address, anonymised in db.session.execute(
        select(Account.id, Account.notification_email, Account.anonymised_at).where(Account.id.in_(wanted))
    ):
        if anonymised is None and address:
            found[account_id] = [address]
    logins = (
        select(User.account_id, User.email)
        .join(Account, Account.id == User.account_id)
        .where(
            User.account_id.in_([account_id for account_id in wanted if account_id not in found]),
            User.role == Role.DRIVER,
            User.active.is_(True),
            Account.anonymised_at.is_(None),
        )
        .order_by(User.email)
    )
    for login_account_id, email in db.session.execute(logins):
        assert login_account_id is not None  # selected by account_id IN (...)
        found.setdefault(login_account_id, []).append(email)
    return found


def clean_address(address: str) -> str:
    """``address`` as we store it (trimmed, lower case), or :class:`AccountError` on the field when it is not an
    address we can mail to."""
    cleaned = normalize_email(address)
    if not cleaned or len(cleaned) > EMAIL_MAX_LENGTH:
        raise AccountError(_l("Enter a valid email address."), "notification_email")
    try:
        validate_email(cleaned, check_deliverability=False)
    except EmailNotValidError:
        raise AccountError(_l("Enter a valid email address."), "notification_email") from None
    return cleaned


def set_notification_email(user: User, address: str | None) -> list[PendingEmail]:
    """The driver asks notices to go to ``address`` (None or empty: back to the sign-in address, at once).

    A new address waits for its confirmation (the link is the pending email returned); the address in use until
    then stays. The driver's own sign-in address needs no second confirmation: it clears the separate one. Asking
    again for the address awaiting confirmation sends a new link."""
    account = user.account
    if account is None:
        raise AccountError(_l("Only drivers have a profile."))
    if address is None or not address.strip():
        account.notification_email = None
        account.notification_email_pending = None
        db.session.flush()
        return []
    cleaned = clean_address(address)
    if cleaned in (user.email, account.notification_email):
        account.notification_email = None if cleaned == user.email else cleaned
        account.notification_email_pending = None
        db.session.flush()
        return []
    account.notification_email_pending = cleaned
    db.session.flush()
    return [notification_confirmation_email(account, cleaned)]


def notification_confirmation_email(account: Account, address: str) -> PendingEmail:
    token = links.make_notify_token(account.id, address)
    return PendingEmail(
        to=address,
        template="confirm_notification_email",
        language=account.language,
        subject=N_("Confirm your address for notices"),
        context={
            "confirm_url": portal_url("accounts.confirm_notification_email", token=token),
            "name": account.full_name,
        },
    )


def confirm_notification_email(token: str) -> Account | None:
    """Make the address of a confirmation link the account's notification address. None when the link is
    invalid, expired, or not for the address awaiting confirmation any more (the driver asked for another one
    since, or cleared it); a link used twice changes nothing the second time."""
    payload = links.read_notify_token(token)
    if payload is None:
        return None
    account = db.session.get(Account, payload.get("account"))
    address = payload.get("email")
    if account is None or account.closed_at is not None or not isinstance(address, str):
        return None
    if account.notification_email == address and account.notification_email_pending is None:
        return account
    if account.notification_email_pending != address:
        return None
    account.notification_email = address
    account.notification_email_pending = None
    db.session.flush()
    return account
