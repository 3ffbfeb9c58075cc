"""Forms of the card pages (portal and back office)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.extensions import FlaskForm


class OrderCardForm(FlaskForm):
    label = StringField(
        _l("Label (optional)"),
        validators=[Optional(), Length(max=80)],
        description=_l("For example 'Company car' or 'Sam'."),
    )
    driver_name = StringField(_l("Driver name (optional)"), validators=[Optional(), Length(max=120)])
    submit = SubmitField(_l("Order card"))


class ActivateCardForm(FlaskForm):
    visual_number = StringField(
        _l("Card number"),
        validators=[DataRequired(), Length(max=64)],
        description=_l("The number printed on the back of your card."),
    )
    submit = SubmitField(_l("Activate"))


class BlockCardForm(FlaskForm):
    reason = SelectField(
        _l("Why?"), choices=[("lost", _l("Lost")), ("stolen", _l("Stolen"))], validators=[DataRequired()]
    )
    submit = SubmitField(_l("Block card"))


class StaffBlockCardForm(FlaskForm):
    # The first choice is empty on purpose: support must pick why (the reason decides who may lift the block and
    # what the driver and the authorization log are told), never get "lost" because it came first. DataRequired
    # refuses "".
    reason = SelectField(
        _l("Reason"),
        validators=[DataRequired(message=_l("Choose why the card is blocked."))],
        choices=[
            ("", _l("Choose a reason")),
            ("lost", _l("Lost")),
            ("stolen", _l("Stolen")),
            ("payment", _l("Payment")),
            ("fraud", _l("Fraud")),
            ("support", _l("Support")),
        ],
    )
    note = TextAreaField(_l("Note"), validators=[DataRequired(), Length(max=1000)])
    submit = SubmitField(_l("Block card"))


class NoteForm(FlaskForm):
    """A CSRF-protected action that may carry a note (required for staff actions)."""

    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=1000)])
    submit = SubmitField(_l("Confirm"))


class StaffNoteForm(FlaskForm):
    note = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=1000)])
    submit = SubmitField(_l("Confirm"))
