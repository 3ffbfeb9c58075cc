"""WTForms of the driver's own customer-care pages. Labels are lazy msgids, translated at render time."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, PasswordField, SubmitField
from wtforms.validators import DataRequired

from app.extensions import FlaskForm


class CloseAccountForm(FlaskForm):
    password = PasswordField(
        _l("Your password"), validators=[DataRequired()], render_kw={"autocomplete": "current-password"}
    )
    confirm = BooleanField(
        _l("I understand that my cards stop working at once and my account cannot be reopened"),
        validators=[DataRequired()],
    )
    submit = SubmitField(_l("Close my account"))
