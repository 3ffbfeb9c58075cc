"""``flask roaming ...`` commands (tokens): push token updates, export whitelist files, send and expire commands."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.extensions import db
from app.ocpi_ids import ci_key
from app.roaming.models import Command, CommandState, Partner

# Added to ``flask roaming`` by app.roaming.cli.roaming_cli_group().
commands = AppGroup("roaming-tokens")


def partner_by_ref(ref: str) -> Partner:
    """A partner by id, name, or ``CC/PID`` (``NL/TCP`` or ``NLTCP``)."""
    partner = db.session.get(Partner, int(ref)) if ref.isdigit() else None
    if partner is None:
        partner = db.session.scalar(select(Partner).where(Partner.name == ref))
    if partner is None:
        key = ref.replace("/", "").replace("*", "").replace("-", "").upper()
        if len(key) == 5:
            partner = db.session.scalar(
                select(Partner).where(Partner.country_code == key[:2], Partner.party_id == key[2:])
            )
    if partner is None:
        raise click.ClickException(f"no partner {ref!r} (give its id, name or CC/PID)")
    return partner


@commands.command("push-tokens")
def push_tokens_command() -> None:
    """Push pending token updates to partners' Tokens receivers (retries what is due)."""
    from app.roaming.send.token_push import run_push

    totals = run_push(commit=True)
    click.echo(
        f"enqueued {totals['enqueued']}, delivered {totals['delivered']}, failed {totals['failed']}, "
        f"still pending {totals['pending']}"
    )


@commands.command("export-whitelist")
@click.argument("partner")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="JSON file to write; the CSV goes next to it with the .csv suffix.",
)
def export_whitelist_command(partner: str, out: str) -> None:
    """Write the full token list for PARTNER as OCPI Token JSON and CSV."""
    from app.roaming.send.whitelist import export_whitelist

    result = export_whitelist(partner_by_ref(partner), out)
    click.echo(f"{result.tokens} tokens written to {result.json_path} and {result.csv_path}")


@commands.command("expire-commands")
def expire_commands_command() -> None:
    """Record TIMEOUT for commands whose CPO never sent a result (and UNKNOWN for interrupted sends)."""
    from app.roaming.send.commands import expire_overdue_commands

    expired = expire_overdue_commands()
    db.session.commit()
    click.echo(
        f"{expired.timed_out} commands timed out, {expired.interrupted} interrupted while sending (outcome unknown)"
    )


# Exit codes of send-command: 0 the CPO took it; 1 it did not happen (a resend cannot do it twice); 3 the outcome
# is unknown (it may have reached the CPO: a resend could start a second session). 2 is click's usage error.
EXIT_NOT_DONE = 1
EXIT_OUTCOME_UNKNOWN = 3


def _command_report(sent: Command) -> tuple[str, int]:
    """What happened to a command just sent, in words for an operator, and the exit code."""
    from app.roaming.send.commands import resend_is_safe

    head = f"{sent.command} {sent.uid}: {sent.state.value.upper()}"
    why = sent.response_problem or sent.result_message
    detail = f" ({why})" if why else ""
    if sent.state is CommandState.PENDING:
        wait = f"its result is expected by {sent.timeout_at:%H:%M:%S} UTC" if sent.timeout_at else "result awaited"
        taken = "the CPO answered ACCEPTED" if sent.response_result == "ACCEPTED" else "the CPO answered success"
        return f"{head}: {taken}{detail}; {wait}. Do not send it again.", 0
    if sent.state is CommandState.ACCEPTED:
        return f"{head}: done at the charge point. Do not send it again.", 0
    if resend_is_safe(sent):
        what = {
            CommandState.REJECTED: f"refused by the CPO: {sent.result}"
            + (f", {sent.result_message}" if sent.result_message else ""),
            CommandState.FAILED: f"the charge point could not do it ({sent.result})",
            CommandState.NOT_SENT: f"it never reached the CPO{detail}",
        }[sent.state]
        return f"{head}: {what}. Nothing was done; sending it again cannot do it twice.", EXIT_NOT_DONE
    return (
        f"{head}: no usable answer from the CPO{detail}. It MAY have reached the CPO and be carried out: do NOT "
        "send it again before checking the charge point or its sessions (a second START_SESSION could start a "
        "second session). A result the CPO still posts is recorded.",
        EXIT_OUTCOME_UNKNOWN,
    )


@commands.command("send-command")
@click.argument("partner")
@click.argument(
    "command",
    type=click.Choice(["START_SESSION", "STOP_SESSION", "UNLOCK_CONNECTOR", "RESERVE_NOW", "CANCEL_RESERVATION"]),
)
@click.option("--card", "card_uid", help="UID of our card to start or reserve with (its Token is sent).")
@click.option("--location", "location_id")
@click.option("--evse", "evse_uid")
@click.option("--connector", "connector_id")
@click.option("--session", "session_id")
@click.option("--reservation", "reservation_id")
@click.option("--expiry", "expiry_date", help="RESERVE_NOW: until when (OCPI DateTime, UTC).")
def send_command_command(partner: str, command: str, card_uid: str | None, **fields: str | None) -> None:
    """Send a command to PARTNER's Commands receiver (support: unlock a stuck cable, stop a session the driver
    cannot stop). Prints what became of it; the asynchronous result arrives at our response_url
    (`flask roaming expire-commands` records TIMEOUT when it never does).

    Exit status: 0 the CPO took it (PENDING, or already ACCEPTED); 1 it was not done (REJECTED by the CPO,
    FAILED at the charge point, or NOT_SENT): sending again cannot do it twice; 3 the outcome is UNKNOWN (no
    usable answer): it may have reached the CPO, check before sending again."""
    from app.cards.models import Card
    from app.roaming.send.commands import CommandError, dispatch_command, prepare_command

    card = None
    if card_uid:
        card = db.session.scalar(select(Card).where(Card.uid == ci_key(card_uid)))  # uids are kept folded
        if card is None:
            raise click.ClickException(f"no card with uid {card_uid}")
    payload = {name: value for name, value in fields.items() if value}
    try:
        prepared = prepare_command(partner_by_ref(partner), command, payload, card=card)
    except CommandError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()  # before sending: the CPO may post the result to our response_url at once
    sent = dispatch_command(prepared)
    db.session.commit()
    text, exit_code = _command_report(sent)
    click.echo(text)
    if exit_code:
        raise SystemExit(exit_code)
