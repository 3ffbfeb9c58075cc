from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, SubmitField
from wtforms.validators import DataRequired

from app.extensions import FlaskForm


class ChangePlanForm(FlaskForm):
    plan_id = HiddenField(validators=[DataRequired()])
    submit = SubmitField(_l("Choose this plan"))
