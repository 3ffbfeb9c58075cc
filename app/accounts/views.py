"""Portal pages for sign-up, confirmation, login/logout, password reset and the profile."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response as WerkzeugResponse

from app.accounts import confirmation, notices, services
from app.accounts.access import driver_required, login_required
from app.accounts.api_tokens import RevokedReason, device_of_user, live_devices_of, revoke_all_devices, revoke_device
from app.accounts.forms import (
    ChangePasswordForm,
    EmailOnlyForm,
    LoginForm,
    NotificationEmailForm,
    ProfileForm,
    ResetPasswordForm,
    SignupForm,
)
from app.accounts.login_limits import LOGIN_ACCOUNT_SCOPE, login_account_key
from app.accounts.models import normalize_email
from app.accounts.plan_choice import plan_catalogue
from app.accounts.redirects import local_path_or_none
from app.accounts.sessions import end_all_sessions
from app.extensions import FlaskForm, db, limiter

bp = Blueprint("accounts", __name__)
# The address this browser signed up or asked for a confirmation link with (in its signed session cookie): the
# link signs in only here (app.accounts.confirmation).
SIGNING_UP_EMAIL = "signing_up_email"


def _limit(key: str) -> str:
    return str(current_app.config[key])


def _profile_from(form: ProfileForm | SignupForm) -> services.DriverProfile:
    return services.DriverProfile(
        full_name=form.full_name.data or "",
        street=form.street.data or "",
        postal_code=form.postal_code.data or "",
        city=form.city.data or "",
        country=form.country.data or "",
        language=form.language.data or "",
        company_name=form.company_name.data,
        vat_number=form.vat_number.data,
    )


def _attach_error(form: FlaskForm, error: services.AccountError) -> None:
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, str(error)]
    else:
        form.form_errors.append(str(error))


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(lambda: _limit("SIGNUP_RATE_LIMIT"), methods=["POST"])
def signup() -> ResponseReturnValue:
    form = SignupForm()
    if request.method == "GET":
        form.language.data = form.language.data or request.accept_languages.best_match(["nl", "fr", "en"]) or "en"
    if form.validate_on_submit():
        try:
            _user, emails = services.register_driver(
                form.email.data, form.password.data, _profile_from(form), plan_code=form.plan.data
            )
        except services.AccountError as error:
            db.session.rollback()
            _attach_error(form, error)
        else:
            db.session.commit()
            services.send_pending(emails)
            session[SIGNING_UP_EMAIL] = normalize_email(form.email.data)  # the link signs in this browser only
            # Same page for new and already-known addresses: no account enumeration.
            return render_template("portal/accounts/check_email.html", email=form.email.data)
    # Each plan's prices side by side, in the page's language, from the catalogue (never written into the page).
    offers = plan_catalogue().offers(str(get_locale()))
    return render_template("portal/accounts/signup.html", form=form, offers=offers)


@bp.get("/confirm/<token>")
def confirm(token: str) -> ResponseReturnValue:
    """The sign-up email's link: confirms the address and signs the driver in, or says what to do instead."""
    signed_in = current_user.id if current_user.is_authenticated else None
    result = confirmation.open_confirmation_link(token, signed_in, session.get(SIGNING_UP_EMAIL))
    if result.outcome == confirmation.ConfirmOutcome.CONFIRMED:
        db.session.commit()
    elif result.outcome == confirmation.ConfirmOutcome.SIGNED_IN and result.user is not None:
        db.session.commit()
        session.pop(SIGNING_UP_EMAIL, None)
        login_user(result.user)
        flash(_("Your email address is confirmed and you are signed in. Welcome!"), "success")
        return redirect(url_for("portal.index"))
    db.session.rollback()
    return render_template(
        "portal/accounts/confirm_result.html",
        outcome=result.outcome.value,
        link_email=result.user.email if result.user is not None else None,
    )


@bp.route("/confirm", methods=["GET", "POST"])
@limiter.limit(lambda: _limit("RESET_RATE_LIMIT"), methods=["POST"])
def resend_confirmation() -> ResponseReturnValue:
    form = EmailOnlyForm()
    if form.validate_on_submit():
        emails = services.resend_confirmation(form.email.data)
        db.session.commit()
        services.send_pending(emails)
        session[SIGNING_UP_EMAIL] = normalize_email(form.email.data)
        flash(_("If an unconfirmed account exists for that address, we sent a new confirmation link."), "info")
        return redirect(url_for("accounts.login"))
    return render_template("portal/accounts/resend_confirmation.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: _limit("LOGIN_RATE_LIMIT"), methods=["POST"])
@limiter.shared_limit(
    lambda: _limit("LOGIN_ACCOUNT_RATE_LIMIT"), LOGIN_ACCOUNT_SCOPE, key_func=login_account_key, methods=["POST"]
)
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("portal.index"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except services.LoginRefusedError as refused:
            db.session.rollback()
            messages = {
                "credentials": _("Email or password is not correct."),
                "inactive": _("This account is closed. Contact support if you think this is a mistake."),
                "unconfirmed": _("Please confirm your email address first. We can send you a new link."),
            }
            form.form_errors.append(messages[refused.reason])
            return render_template(
                "portal/accounts/login.html", form=form, show_resend=refused.reason == "unconfirmed"
            ), 200
        db.session.commit()
        # With "keep me logged in", a new remember-me cookie at each login (see app.accounts.session_tokens).
        login_user(user, remember=bool(form.remember.data))
        # A language chosen in this browser before logging in wins (app.i18n.select_locale); without one, the
        # account's language applies.
        target = local_path_or_none(request.args.get("next"))
        return redirect(target or url_for("portal.index"))
    return render_template("portal/accounts/login.html", form=form, show_resend=False)


def _log_out_everywhere(message: str) -> WerkzeugResponse:
    # Ended on the server, not only forgotten by this browser: a copied session or remember-me cookie stops
    # working too, and so do the user's other browsers.
    end_all_sessions(current_user._get_current_object())
    db.session.commit()
    logout_user()
    flash(message, "info")
    return redirect(url_for("accounts.login"))


@bp.post("/logout")
@login_required
def logout() -> WerkzeugResponse:
    return _log_out_everywhere(_("You are logged out."))


@bp.post("/profile/sign-out-everywhere")
@login_required
def sign_out_everywhere() -> WerkzeugResponse:
    """The profile's button for a driver who lost a phone or logged in on someone else's computer: every browser
    and every device signed in to the app."""
    revoke_all_devices(current_user._get_current_object(), RevokedReason.EVERYWHERE)
    return _log_out_everywhere(_("You are logged out on all your devices."))


@bp.post("/profile/devices/<int:device_id>/sign-out")
@driver_required
def sign_out_device(device_id: int) -> WerkzeugResponse:
    """Sign one device out of the app (a lost phone); someone else's device is a 404. (CSRF: CSRFProtect.)"""
    device = device_of_user(current_user.id, device_id)
    if device is None:
        abort(404)
    revoke_device(device, RevokedReason.DEVICE_SIGNED_OUT)
    db.session.commit()
    flash(_("%(device)s is signed out of the app.", device=device.name), "info")
    return redirect(url_for("accounts.profile"))


@bp.route("/password/reset", methods=["GET", "POST"])
@limiter.limit(lambda: _limit("RESET_RATE_LIMIT"), methods=["POST"])
def reset_request() -> ResponseReturnValue:
    form = EmailOnlyForm()
    if form.validate_on_submit():
        emails = services.request_password_reset(form.email.data)
        db.session.commit()
        services.send_pending(emails)
        flash(_("If an account exists for that address, we sent a link to reset the password."), "info")
        return redirect(url_for("accounts.login"))
    return render_template("portal/accounts/reset_request.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: _limit("RESET_RATE_LIMIT"), methods=["POST"])
def reset_password(token: str) -> ResponseReturnValue:
    if services.user_for_reset_token(token) is None:
        flash(_("This reset link is invalid, expired or already used. Request a new one."), "error")
        return redirect(url_for("accounts.reset_request"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            services.reset_password(token, form.password.data)
        except services.AccountError as error:
            db.session.rollback()
            _attach_error(form, error)
        else:
            db.session.commit()
            logout_user()
            flash(_("Your password is changed. Log in with your new password."), "success")
            return redirect(url_for("accounts.login"))
    return render_template("portal/accounts/reset_password.html", form=form)


@bp.route("/profile", methods=["GET", "POST"])
@driver_required
def profile() -> ResponseReturnValue:
    account = current_user.account
    form = ProfileForm(obj=account)
    password_form = ChangePasswordForm(prefix="pw")
    if form.submit.data and form.validate_on_submit():
        try:
            services.update_profile(current_user, _profile_from(form))
        except services.AccountError as error:
            db.session.rollback()
            _attach_error(form, error)
        else:
            db.session.commit()
            session["lang"] = account.language
            flash(_("Your profile is saved."), "success")
            return redirect(url_for("accounts.profile"))
    return _profile_page(form, password_form)


def _profile_page(
    form: ProfileForm,
    password_form: ChangePasswordForm,
    status: int = 200,
    notify_form: NotificationEmailForm | None = None,
) -> ResponseReturnValue:
    account = current_user.account
    if notify_form is None:
        notify_form = NotificationEmailForm(prefix="notify", formdata=None)
        notify_form.notification_email.data = account.notification_email_pending or account.notification_email
    return render_template(
        "portal/accounts/profile.html",
        form=form,
        password_form=password_form,
        notify_form=notify_form,
        account=account,
        devices=live_devices_of(current_user.id),
    ), status


@bp.post("/profile/notification-email")
@driver_required
@limiter.limit(lambda: _limit("RESET_RATE_LIMIT"))  # each new address is mailed a link
def notification_email() -> ResponseReturnValue:
    """Where the account's notices go: a new address is used once confirmed by the link mailed to it."""
    form = ProfileForm(obj=current_user.account, formdata=None)
    notify_form = NotificationEmailForm(prefix="notify")
    if notify_form.validate_on_submit():
        try:
            emails = notices.set_notification_email(current_user, notify_form.notification_email.data)
        except services.AccountError as error:
            db.session.rollback()
            _attach_error(notify_form, error)
        else:
            db.session.commit()
            services.send_pending(emails)
            if emails:
                flash(
                    _("We sent a link to %(email)s. Open it to receive your notices there.", email=emails[0].to), "info"
                )
            else:
                flash(
                    _("Your notices go to %(email)s.", email=notices.notice_addresses(current_user.account_id)[0]),
                    "success",
                )
            return redirect(url_for("accounts.profile"))
    return _profile_page(form, ChangePasswordForm(prefix="pw"), 400, notify_form)


@bp.get("/profile/notification-email/confirm/<token>")
def confirm_notification_email(token: str) -> ResponseReturnValue:
    """The link of the confirmation mail (signed, so it works on the phone that opened the mail, signed in or not)."""
    account = notices.confirm_notification_email(token)
    if account is None:
        flash(_("This confirmation link is invalid or has expired. Set the address again in your profile."), "error")
        return redirect(url_for("accounts.profile"))
    db.session.commit()
    flash(_("Confirmed: your notices go to %(email)s.", email=account.notification_email), "success")
    return redirect(url_for("accounts.profile"))


@bp.post("/profile/password")
@driver_required
def change_password() -> ResponseReturnValue:
    form = ProfileForm(obj=current_user.account, formdata=None)
    password_form = ChangePasswordForm(prefix="pw")
    if password_form.validate_on_submit():
        try:
            services.change_password(current_user, password_form.current_password.data, password_form.password.data)
        except services.AccountError as error:
            db.session.rollback()
            _attach_error(password_form, error)
        else:
            db.session.commit()
            login_user(current_user._get_current_object())  # re-issue the session with the new version
            flash(_("Your password is changed."), "success")
            return redirect(url_for("accounts.profile"))
    return _profile_page(form, password_form, 400)
