"""``flask roaming ...`` commands (tokens): push token updates, export whitelist files, expire commands."""

from __future__ import annotations

import click
from sqlalchemy import select

from app.extensions import db
from app.roaming.cli import roaming_cli
from app.roaming.models import Partner


def partner_by_ref(ref: str) -> Partner:
    """A partner by id, name, or ``CC/PID`` (``NL/TCP`` or ``NLTCP``)."""
    partner = db.session.get(Partner, int(ref)) if ref.isdigit() else None
    if partner is None:
        partner = db.session.scalar(select(Partner).where(Partner.name == ref))
    if partner is None:
        key = ref.replace("/", "").replace("*", "").replace("-", "").upper()
        if len(key) == 5:
            partner = db.session.scalar(select(Partner).where(Partner.country_code == key[:2],
                                                              Partner.party_id == key[2:]))
    if partner is None:
        raise click.ClickException(f"no partner {ref!r} (give its id, name or CC/PID)")
    return partner


@roaming_cli.command("push-tokens")
def push_tokens_command() -> None:
    """Push pending token updates to partners' Tokens receivers (retries what is due)."""
    from app.roaming.token_push import run_push

    totals = run_push(commit=True)
    click.echo(f"enqueued {totals['enqueued']}, delivered {totals['delivered']}, failed {totals['failed']}, "
               f"still pending {totals['pending']}")


@roaming_cli.command("export-whitelist")
@click.argument("partner")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="JSON file to write; the CSV goes next to it with the .csv suffix.")
def export_whitelist_command(partner: str, out: str) -> None:
    """Write the full token list for PARTNER as OCPI Token JSON and CSV."""
    from app.roaming.whitelist import export_whitelist

    result = export_whitelist(partner_by_ref(partner), out)
    click.echo(f"{result.tokens} tokens written to {result.json_path} and {result.csv_path}")


@roaming_cli.command("expire-commands")
def expire_commands_command() -> None:
    """Record TIMEOUT for commands whose CPO never sent a result."""
    from app.roaming.commands import expire_commands

    count = expire_commands()
    db.session.commit()
    click.echo(f"{count} commands timed out")
