"""Forms of the portal's own pages: starting a session from the charge point's page."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, RadioField, SelectField, SubmitField
from wtforms.validators import DataRequired, Length

from app.extensions import FlaskForm


class StartChargingForm(FlaskForm):
    # The charge point as the start page's URL names it (``CC/PID/ID`` and the EVSE uid: OCPI CiStrings).
    location = HiddenField(validators=[DataRequired(), Length(max=48)])
    evse = HiddenField(validators=[DataRequired(), Length(max=36)])
    connector = RadioField(_l("Connector"), validators=[DataRequired()])
    card = SelectField(_l("Charge with"), coerce=int, validators=[DataRequired()])
    submit = SubmitField(_l("Start charging"))
