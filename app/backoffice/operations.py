"""Operations back office: the roaming network per partner and hub, and the buttons for what ``flask roaming`` does
(pull now, push pending tokens, re-process the quarantine, suspend and resume a partner).

The pages render the read services of :mod:`app.roaming.network`. Every button is a POST with a CSRF token,
needs the operations role (admins hold it) and is audited: the request is recorded and committed first, then the
job is handed to a worker (run inline when there is no broker), so a job that fails or is lost never undoes the
record of who asked for it. Suspend and resume go through :mod:`app.roaming.partners.lifecycle`, which checks the
move and audits it in the same unit of work.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import BooleanField, HiddenField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.accounts.models import Role
from app.audit.services import Actor, entries_for, record
from app.backoffice.access import staff_required
from app.db import utcnow
from app.extensions import FlaskForm, db
from app.failures import failure_reason
from app.roaming import tasks as roaming_tasks
from app.roaming.models import Partner
from app.roaming.network import partner as partner_page
from app.roaming.network.figures import RECEIVED_MODULES, SENT_MODULES
from app.roaming.network.overview import network_overview, partner_overview
from app.roaming.partners import lifecycle
from app.roaming.partners.errors import PartnerError
from app.roaming.partners.states import AUDIT_SUBJECT, REASON_MAX_CHARS, TALKING
from app.roaming.receive.pull import MODULES as PULL_MODULES

log = logging.getLogger(__name__)

# Nested in the back office's blueprint (``app.backoffice.views``): /backoffice/operations/..., endpoints
# ``backoffice.operations.*``.
bp = Blueprint("operations", __name__, url_prefix="/operations")

QUARANTINE_PAGE = 50


MODULE_LABELS = {"locations": _l("Locations"), "tariffs": _l("Tariffs"), "sessions": _l("Sessions"), "cdrs": _l("CDRs")}


class PullForm(FlaskForm):
    module = SelectField(
        _l("Module"),
        choices=[("", _l("All it offers")), *((module, MODULE_LABELS[module]) for module in PULL_MODULES)],
        validators=[Optional()],
    )
    restart = BooleanField(_l("From the beginning (forget where the last pull stopped)"))


class ReasonForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=REASON_MAX_CHARS)])


class OptionalReasonForm(FlaskForm):
    reason = TextAreaField(_l("Reason (optional)"), validators=[Optional(), Length(max=REASON_MAX_CHARS)])


class ButtonForm(FlaskForm):
    """A button: the CSRF token, and the partner page to come back to (when pressed there)."""

    partner_id = HiddenField(validators=[Optional(), Length(max=12)])


@bp.context_processor
def _time_helpers() -> dict[str, Any]:
    """``ago(moment)``: how long ago, in words of the page's language ("3 hours ago"): what operations read
    first about an exchange; the exact time goes in the element's title."""
    now = utcnow()

    def ago(moment: dt.datetime) -> str:
        return str(format_timedelta(moment - now, granularity="minute", add_direction=True))

    return {"ago": ago}


def _actor() -> Actor:
    return Actor.of(current_user)


def _partner_or_404(partner_id: int) -> Partner:
    partner = db.session.get(Partner, partner_id)
    if partner is None:
        abort(404)
    return partner


def _back_to(partner_id: int | None = None) -> ResponseReturnValue:
    if partner_id is None:
        return redirect(url_for(".network"))
    return redirect(url_for(".partner_detail", partner_id=partner_id))


def _forms(pullable: list[str]) -> dict[str, FlaskForm]:
    pull_form = PullForm(prefix="pull-")
    # Offer the modules the partner sends; any of ours is accepted back (its pull then says what is missing).
    pull_form.module.choices = [("", _("All it offers")), *((module, MODULE_LABELS[module]) for module in pullable)]
    return {
        "pull_form": pull_form,
        "suspend_form": ReasonForm(prefix="suspend-"),
        "resume_form": OptionalReasonForm(prefix="resume-"),
    }


# --- pages ------------------------------------------------------------------------------------------------------


@bp.get("/")
@staff_required(Role.OPERATIONS)
def network() -> str:
    overview = network_overview()
    return render_template("backoffice/operations/network.html", overview=overview)


@bp.get("/partners/<int:partner_id>")
@staff_required(Role.OPERATIONS)
def partner_detail(partner_id: int) -> str:
    overview = partner_overview(partner_id)
    if overview is None:
        abort(404)
    parties, party_total = partner_page.parties_of(partner_id)
    pullable = [module for module in PULL_MODULES if overview.offers(module, "SENDER")]
    offset = request.args.get("offset", default=0, type=int) or 0
    return render_template(
        "backoffice/operations/partner.html",
        partner=overview,
        row=_partner_or_404(partner_id),
        parties=parties,
        party_total=party_total,
        failed_deliveries=partner_page.failed_deliveries(partner_id),
        quarantine=partner_page.quarantine_page(partner_id, offset=offset, limit=QUARANTINE_PAGE),
        history=entries_for(AUDIT_SUBJECT, partner_id, limit=30),
        received_modules=RECEIVED_MODULES,
        sent_modules=SENT_MODULES,
        may_call=overview.status in TALKING,
        pullable=pullable,
        **_forms(pullable),
    )


@bp.get("/partners/<int:partner_id>/quarantine/<int:object_id>")
@staff_required(Role.OPERATIONS)
def quarantined_object(partner_id: int, object_id: int) -> str:
    partner = _partner_or_404(partner_id)
    found = partner_page.quarantined_object(partner_id, object_id)
    if found is None:
        abort(404)
    return render_template(
        "backoffice/operations/quarantined.html", partner=partner, item=found, raw=_readable_json(found.raw)
    )


READABLE_INPUT_MAX = 200_000  # characters of raw JSON laid out; longer is shown as kept
READABLE_OUTPUT_MAX = 1_000_000  # what the layout may grow to (deep nesting multiplies the indentation)
INDENT_MAX_LEVELS = 16  # deeper levels are not indented further (the intake refuses nesting beyond 32)


def _readable_json(raw: str) -> str:
    """The raw object laid out one member per line, every token exactly as received (a reformat that parsed and
    dumped the JSON would rewrite numbers such as 1E+30 or 0.10). Only whitespace outside strings changes; text
    that is not JSON, or too big to lay out, is shown as it was kept."""
    if len(raw) > READABLE_INPUT_MAX or not _is_json(raw):
        return raw
    out: list[str] = []
    size, depth, in_string, escaped = 0, 0, False, False

    def newline(level: int) -> str:
        return "\n" + "  " * min(max(level, 0), INDENT_MAX_LEVELS)

    for char in raw:
        piece = char
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
            piece = char + newline(depth)
        elif char in "}]":
            depth -= 1
            if out and out[-1][0] in "{[" and out[-1] == out[-1][0] + newline(depth + 1):
                out[-1] = out[-1][0]  # an empty object or array stays {} / []
            else:
                piece = newline(depth) + char
        elif char == ",":
            piece = "," + newline(depth)
        elif char == ":":
            piece = ": "
        elif char.isspace():
            continue
        out.append(piece)
        size += len(piece)
        if size > READABLE_OUTPUT_MAX:
            return raw
    return "".join(out)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return False
    return True


# --- buttons ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    failure: str | None = None  # why the job could not be queued, or (inline) why it failed
    result: Any = None  # what the job returned, when it ran inline


def _run(task: Any, *args: Any, **kwargs: Any) -> _Outcome:
    """Hand the job to a worker (inline without a broker). Called after the request's record was committed, so a
    failure here (no broker; inline, the job's own error) is reported and logged without undoing it."""
    try:
        handed = task.delay(*args, **kwargs)
        return _Outcome(result=handed.get() if _inline() else None)
    except Exception as error:  # any failure of the job is shown to the operator, not turned into a 500
        db.session.rollback()
        log.exception("operations: %s(%s, %s) failed", getattr(task, "name", task), args, kwargs)
        return _Outcome(failure=failure_reason(error))


def _inline() -> bool:
    """No broker: Celery runs each job in the request (the embedded set-up and the tests)."""
    return bool(current_app.extensions["celery"].conf.task_always_eager)


def _report(outcome: _Outcome, done: str, queued: str) -> None:
    if outcome.failure is not None:
        flash(_("It did not run: %(error)s", error=outcome.failure), "error")
    else:
        flash(done if _inline() else queued, "success")


@bp.post("/partners/<int:partner_id>/pull")
@staff_required(Role.OPERATIONS)
def pull_now(partner_id: int) -> ResponseReturnValue:
    partner = _partner_or_404(partner_id)
    form = PullForm(prefix="pull-")
    if not form.validate_on_submit():
        flash(_("The form expired or a field is wrong; try again."), "error")
        return _back_to(partner.id)
    if partner.status not in TALKING:
        flash(_("%(name)s is not registered: nothing is pulled from it.", name=partner.name), "error")
        return _back_to(partner.id)
    name = partner.name
    modules = [form.module.data] if form.module.data else None
    restart = bool(form.restart.data)
    record(
        "roaming.pull_requested",
        AUDIT_SUBJECT,
        partner.id,
        actor=_actor(),
        details={"modules": modules or "offered", "restart": restart},
    )
    db.session.commit()
    outcome = _run(roaming_tasks.pull_partner, partner_id, modules=modules, restart=restart)
    if outcome.result == {}:  # ran inline and found no module to pull
        flash(_("%(name)s offers no module to pull (no Sender interface announced).", name=name), "warning")
        return _back_to(partner_id)
    _report(
        outcome,
        _("Pulled from %(name)s; the figures below are up to date.", name=name),
        _("Pull from %(name)s queued; the figures change once a worker has run it.", name=name),
    )
    for module, failure in _pull_failures(outcome.result):
        flash(_("%(module)s not pulled: %(error)s", module=module, error=failure), "error")
    return _back_to(partner_id)


def _pull_failures(result: Any) -> list[tuple[str, str]]:
    """The modules an inline pull could not do, with why (``roaming.pull_partner`` answers per module with what
    it did, an ``error`` or a ``skipped`` reason); the cursors keep the same for the page."""
    if not isinstance(result, dict):
        return []
    failures = []
    for module, report in result.items():
        if isinstance(report, dict) and (report.get("error") or report.get("skipped")):
            failures.append((str(module), str(report.get("error") or report.get("skipped"))[:500]))
    return failures


@bp.post("/push-tokens")
@staff_required(Role.OPERATIONS)
def push_tokens() -> ResponseReturnValue:
    form = ButtonForm()
    back = form.partner_id.data
    partner_id = int(back) if back and back.isdigit() and db.session.get(Partner, int(back)) else None
    if not form.validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return _back_to(partner_id)
    record("roaming.token_push_requested", "roaming_token_pushes", "all", actor=_actor())
    db.session.commit()
    _report(
        _run(roaming_tasks.push_tokens),
        _("Pending token updates pushed; what failed again waits for its next attempt."),
        _("Token push queued."),
    )
    return _back_to(partner_id)


@bp.post("/partners/<int:partner_id>/reprocess-quarantine")
@staff_required(Role.OPERATIONS)
def reprocess_quarantine(partner_id: int) -> ResponseReturnValue:
    partner = _partner_or_404(partner_id)
    if not ButtonForm().validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return _back_to(partner.id)
    record("roaming.quarantine_reprocess_requested", AUDIT_SUBJECT, partner.id, actor=_actor())
    db.session.commit()
    name = partner.name
    _report(
        _run(roaming_tasks.reprocess_quarantine, partner_id),
        _("Quarantine of %(name)s re-processed; what still fails stays, with its new reason.", name=name),
        _("Re-processing of the quarantine of %(name)s queued.", name=name),
    )
    return _back_to(partner_id)


@bp.post("/partners/<int:partner_id>/suspend")
@staff_required(Role.OPERATIONS)
def suspend(partner_id: int) -> ResponseReturnValue:
    partner = _partner_or_404(partner_id)
    form = ReasonForm(prefix="suspend-")
    if not form.validate_on_submit():
        flash(_("Suspending a partner needs a reason (at most %(max)s characters).", max=REASON_MAX_CHARS), "error")
        return _back_to(partner.id)
    try:
        lifecycle.suspend(partner, actor=_actor(), reason=form.reason.data)
    except PartnerError as error:
        db.session.rollback()
        flash(_("Not suspended: %(error)s", error=str(error)), "error")
        return _back_to(partner.id)
    db.session.commit()
    flash(
        _("%(name)s is suspended: our cards are refused there and nothing is pushed or pulled.", name=partner.name),
        "success",
    )
    return _back_to(partner.id)


@bp.post("/partners/<int:partner_id>/resume")
@staff_required(Role.OPERATIONS)
def resume(partner_id: int) -> ResponseReturnValue:
    partner = _partner_or_404(partner_id)
    form = OptionalReasonForm(prefix="resume-")
    if not form.validate_on_submit():
        flash(_("The form expired or the reason is too long; try again."), "error")
        return _back_to(partner.id)
    try:
        lifecycle.resume(partner, actor=_actor(), reason=form.reason.data or None)
    except PartnerError as error:
        db.session.rollback()
        flash(_("Not resumed: %(error)s", error=str(error)), "error")
        return _back_to(partner.id)
    db.session.commit()
    flash(_("%(name)s is registered again: our cards work there again.", name=partner.name), "success")
    return _back_to(partner.id)
