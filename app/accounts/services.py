"""Account use cases, callable from any door (portal, back office, API, CLI).

Services flush, never commit: the request or command that calls them owns the transaction. Emails are
returned as *pending* work for the caller to send after commit (see :func:`send_pending`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts import links
from app.accounts.api_tokens import RevokedReason, revoke_all_devices
from app.accounts.models import LANGUAGES, SUPPORTED_COUNTRIES, Account, Role, User, normalize_email
from app.accounts.passwords import (
    MIN_PASSWORD_LENGTH,
    burn_verification_time,
    hash_password,
    needs_rehash,
    verify_password,
)
from app.accounts.plan_choice import PlanRefusedError, plan_catalogue
from app.accounts.postcodes import InvalidPostcodeError, normalise_postcode
from app.accounts.sessions import end_all_sessions
from app.accounts.vat_numbers import InvalidVatNumberError, validate_vat_number
from app.audit.services import Actor
from app.audit.services import record as record_audit
from app.db import utcnow
from app.extensions import db
from app.i18n import N_
from app.mail import queue_template
from app.public_urls import portal_url


class AccountError(ValueError):
    """A use case refused its input; ``field`` names the offending field when there is one."""

    def __init__(self, message: str | LazyString, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class PendingEmail:
    to: str
    template: str
    language: str
    subject: str
    context: dict[str, object] = field(default_factory=dict)


def send_pending(emails: list[PendingEmail]) -> None:
    """Queue emails prepared by a service for sending (a job; inline without a broker); call after the unit of
    work committed."""
    for email in emails:
        queue_template(email.to, email.template, email.language, email.subject, **email.context)


@dataclass
class DriverProfile:
    full_name: str
    street: str
    postal_code: str
    city: str
    country: str
    language: str
    company_name: str | None = None
    vat_number: str | None = None


def _clean_profile(profile: DriverProfile) -> DriverProfile:
    for name in ("full_name", "street", "postal_code", "city"):
        if not getattr(profile, name).strip():
            raise AccountError(_l("This field is required."), name)
    if profile.country not in SUPPORTED_COUNTRIES:
        raise AccountError(_l("We do not offer contracts in this country yet."), "country")
    if profile.language not in LANGUAGES:
        raise AccountError(_l("Unsupported language."), "language")
    company = (profile.company_name or "").strip() or None
    vat = (profile.vat_number or "").strip() or None
    if vat and not company:
        raise AccountError(_l("A VAT number needs a company name."), "company_name")
    if vat:
        try:
            vat = validate_vat_number(vat)
        except InvalidVatNumberError as exc:
            raise AccountError(exc.args[0], "vat_number") from exc
    try:
        postal_code = normalise_postcode(profile.country, profile.postal_code)
    except InvalidPostcodeError as exc:
        raise AccountError(exc.args[0], "postal_code") from exc
    return DriverProfile(
        full_name=profile.full_name.strip(),
        street=profile.street.strip(),
        postal_code=postal_code,
        city=profile.city.strip(),
        country=profile.country,
        language=profile.language,
        company_name=company,
        vat_number=vat,
    )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(_l("Use at least %(count)s characters.", count=MIN_PASSWORD_LENGTH), "password")


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def register_driver(
    email: str, password: str, profile: DriverProfile, plan_code: str | None = None
) -> tuple[User | None, list[PendingEmail]]:
    """Sign a driver up on ``plan_code`` (the catalogue's default when None). Returns the new user (None if the
    email was taken) and the email to send.

    To avoid account enumeration the caller shows the same message either way, and both ways cost the same:
    the input is checked in full (the plan too) and the password hashed before we look the address up, and
    both send one email through the job queue. The owner of an existing address gets a "you already have an
    account" email instead of a confirmation link.
    """
    email = normalize_email(email)
    _check_password(password)
    profile = _clean_profile(profile)
    plans = plan_catalogue()
    plan = plans.find(plan_code or plans.default_code)
    if plan is None:
        raise AccountError(_l("Choose one of the plans offered."), "plan")
    # The expensive step, taken whether or not the address is known (hashing only for a new one answered a known
    # address in 8 ms and a new one in 190 ms).
    password_hash = hash_password(password)
    existing = find_user_by_email(email)
    if existing is not None:
        return None, [already_registered_email(email, existing.preferred_language)]
    account = Account(**profile.__dict__)
    user = User(email=email, password_hash=password_hash, role=Role.DRIVER, account=account)
    db.session.add_all([account, user])
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        # A concurrent sign-up with the same email won the race: same answer as "already registered".
        return None, []
    try:
        plans.subscribe(account, plan, Actor.of(user))
    except PlanRefusedError as error:
        raise AccountError(error.args[0], "plan") from error
    return user, [confirmation_email(user)]


def already_registered_email(email: str, language: str) -> PendingEmail:
    return PendingEmail(
        to=email,
        template="already_registered",
        language=language,
        subject=N_("You already have an account"),
        context={"login_url": portal_url("accounts.login"), "reset_url": portal_url("accounts.reset_request")},
    )


def confirmation_email(user: User) -> PendingEmail:
    token = links.make_confirm_token(user.id, user.email)
    return PendingEmail(
        to=user.email,
        template="confirm_email",
        language=user.preferred_language,
        subject=N_("Confirm your email address"),
        context={
            "confirm_url": portal_url("accounts.confirm", token=token),
            "name": user.account.full_name if user.account else user.email,
        },
    )


def resend_confirmation(email: str) -> list[PendingEmail]:
    user = find_user_by_email(email)
    if user is None or user.is_confirmed:
        return []
    return [confirmation_email(user)]


class LoginRefusedError(AccountError):
    """Wrong credentials, inactive or unconfirmed user. ``reason`` tells the view which message to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def authenticate(email: str, password: str) -> User:
    user = find_user_by_email(email)
    if user is None:
        burn_verification_time(password)
        raise LoginRefusedError("credentials")
    if not verify_password(user.password_hash, password):
        raise LoginRefusedError("credentials")
    # Only somebody who knows the password learns the account's state.
    if not user.active:
        raise LoginRefusedError("inactive")
    if not user.is_confirmed:
        raise LoginRefusedError("unconfirmed")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    db.session.flush()
    return user


def request_password_reset(email: str) -> list[PendingEmail]:
    """Prepare a reset email if the address is known; the caller answers the same either way."""
    user = find_user_by_email(email)
    if user is None or not user.active:
        return []
    token = links.make_reset_token(user.id, user.session_version)
    return [
        PendingEmail(
            to=user.email,
            template="reset_password",
            language=user.preferred_language,
            subject=N_("Reset your password"),
            context={"reset_url": portal_url("accounts.reset_password", token=token)},
        )
    ]


def user_for_reset_token(token: str) -> User | None:
    payload = links.read_reset_token(token)
    if payload is None:
        return None
    user = db.session.get(User, payload.get("uid"))
    if user is None or not user.active or user.session_version != payload.get("v"):
        return None
    return user


def reset_password(token: str, new_password: str) -> User:
    user = user_for_reset_token(token)
    if user is None:
        raise AccountError(_l("This reset link is invalid, expired or already used."))
    set_password(user, new_password)
    # Receiving the link proves control of the mailbox.
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    db.session.flush()
    return user


def set_password(user: User, new_password: str) -> None:
    _check_password(new_password)
    user.password_hash = hash_password(new_password)
    # Whoever knew the old password may hold a session: all of them end (the caller logs this browser in anew),
    # the app's signed-in devices too.
    end_all_sessions(user)
    revoke_all_devices(user, RevokedReason.PASSWORD_CHANGED)


def change_password(user: User, current_password: str, new_password: str) -> None:
    if not verify_password(user.password_hash, current_password):
        raise AccountError(_l("Your current password is not correct."), "current_password")
    set_password(user, new_password)


def update_profile(user: User, profile: DriverProfile) -> Account:
    if user.account is None:
        raise AccountError(_l("Only drivers have a profile."))
    cleaned = _clean_profile(profile)
    account = user.account
    for name, value in cleaned.__dict__.items():
        setattr(account, name, value)
    db.session.flush()
    return account


def create_user(
    email: str,
    password: str,
    role: Role,
    *,
    profile: DriverProfile | None = None,
    confirmed: bool = True,
    actor_label: str = "cli",
    plan_code: str | None = None,
) -> User:
    """Create a user directly (operations, demo data): staff, or a driver with a profile on ``plan_code`` (the
    catalogue's default when None; no plan when the catalogue has no such plan)."""
    email = normalize_email(email)
    if "@" not in email:
        raise AccountError("Not an email address.", "email")
    _check_password(password)
    if find_user_by_email(email) is not None:
        raise AccountError(f"A user with email {email} already exists.", "email")
    account = None
    if role == Role.DRIVER:
        # Without a profile the account gets the placeholder address ("-"), which is no postal code: stored as it
        # is, for the driver to fill in on the profile page (where it is checked like any other).
        cleaned = _clean_profile(profile) if profile is not None else default_driver_profile(email)
        account = Account(**cleaned.__dict__)
        db.session.add(account)
    user = User(
        email=email,
        password_hash=hash_password(password),
        role=role,
        account=account,
        email_confirmed_at=utcnow() if confirmed else None,
    )
    db.session.add(user)
    db.session.flush()
    record_audit("user.create", "user", user.id, actor_label=actor_label, details={"role": str(role)})
    if account is not None:
        plans = plan_catalogue()
        plan = plans.find(plan_code or plans.default_code)
        if plan is not None:
            plans.subscribe(account, plan, Actor.system(actor_label))
    return user


def default_driver_profile(email: str) -> DriverProfile:
    return DriverProfile(
        full_name=email.split("@")[0], street="-", postal_code="-", city="-", country="BE", language="en"
    )
