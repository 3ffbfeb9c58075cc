"""WTForms for sign-up, login, reset and profile. Labels are lazy msgids, translated at render time."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, PasswordField, RadioField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from app.accounts.models import SUPPORTED_COUNTRIES
from app.accounts.passwords import MIN_PASSWORD_LENGTH
from app.accounts.plan_choice import plan_catalogue
from app.extensions import FlaskForm


def country_choices() -> list[tuple[str, str]]:
    from babel import Locale
    from flask_babel import get_locale

    locale = Locale.parse(str(get_locale()))
    return [(code, locale.territories.get(code, code)) for code in SUPPORTED_COUNTRIES]


LANGUAGE_CHOICES = [("nl", "Nederlands"), ("fr", "Français"), ("en", "English")]


class ProfileFields(FlaskForm):
    full_name = StringField(
        _l("Full name"), validators=[DataRequired(), Length(max=200)], render_kw={"autocomplete": "name"}
    )
    street = StringField(
        _l("Street and number"),
        validators=[DataRequired(), Length(max=200)],
        render_kw={"autocomplete": "street-address"},
    )
    postal_code = StringField(
        _l("Postal code"), validators=[DataRequired(), Length(max=20)], render_kw={"autocomplete": "postal-code"}
    )
    city = StringField(
        _l("City"), validators=[DataRequired(), Length(max=100)], render_kw={"autocomplete": "address-level2"}
    )
    country = SelectField(_l("Country"), validators=[DataRequired()])
    language = SelectField(_l("Preferred language"), choices=LANGUAGE_CHOICES, validators=[DataRequired()])
    company_name = StringField(
        _l("Company name (business drivers)"),
        validators=[Optional(), Length(max=200)],
        render_kw={"autocomplete": "organization"},
    )
    vat_number = StringField(_l("VAT number"), validators=[Optional(), Length(max=20)])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.country.choices = country_choices()


class SignupForm(ProfileFields):
    email = EmailField(
        _l("Email"), validators=[DataRequired(), Email(), Length(max=254)], render_kw={"autocomplete": "email"}
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=200)],
        render_kw={"autocomplete": "new-password"},
        description=_l("At least %(n)s characters.", n=MIN_PASSWORD_LENGTH),
    )
    password_repeat = PasswordField(
        _l("Repeat password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords do not match."))],
        render_kw={"autocomplete": "new-password"},
    )
    plan = RadioField(_l("Plan"), validators=[DataRequired()], default="payg")
    accept_terms = BooleanField(_l("I accept the terms and conditions"), validators=[DataRequired()])
    submit = SubmitField(_l("Create account"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        from flask_babel import get_locale

        self.plan.choices = plan_catalogue().choices(str(get_locale()))


class ProfileForm(ProfileFields):
    submit = SubmitField(_l("Save"))


class NotificationEmailForm(FlaskForm):
    notification_email = EmailField(
        _l("Email for notices"),
        validators=[Optional(), Email(), Length(max=254)],
        description=_l(
            "Invoices, payment messages and card notices. Leave it empty to receive them at your sign-in address."
        ),
        render_kw={"autocomplete": "email"},
    )
    submit = SubmitField(_l("Save address"))


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email()], render_kw={"autocomplete": "email"})
    password = PasswordField(
        _l("Password"), validators=[DataRequired()], render_kw={"autocomplete": "current-password"}
    )
    remember = BooleanField(_l("Keep me logged in"))
    submit = SubmitField(_l("Log in"))


class EmailOnlyForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email()], render_kw={"autocomplete": "email"})
    submit = SubmitField(_l("Send link"))


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH)],
        render_kw={"autocomplete": "new-password"},
    )
    password_repeat = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords do not match."))],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField(_l("Set new password"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired()], render_kw={"autocomplete": "current-password"}
    )
    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH)],
        render_kw={"autocomplete": "new-password"},
    )
    password_repeat = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords do not match."))],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField(_l("Change password"))
