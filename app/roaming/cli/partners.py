"""``flask roaming ...`` commands (partners): add and list partners, register with them, rotate, unregister."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.extensions import db
from app.roaming.models import Partner
from app.roaming.partners import handshake
from app.roaming.partners.parties import list_conflicts
from app.roaming.partners.services import (
    PartnerError,
    add_partner,
    get_partner,
    list_partners,
    reset_partner_token,
)

# Added to ``flask roaming`` by app.roaming.cli.roaming_cli_group().
commands = AppGroup("roaming-partners")


def _partner(reference: str) -> Partner:
    partner = get_partner(reference)
    if partner is None:
        raise click.ClickException(f"no partner with id or name {reference!r} (see `flask roaming partners`)")
    return partner


def _fail(error: PartnerError) -> click.ClickException:
    db.session.rollback()
    code = f" [OCPI {error.status_code}]" if error.status_code >= 2001 else ""
    return click.ClickException(f"{error.message}{code}")


@commands.command("partner-add")
@click.option("--name", required=True)
@click.option("--country-code", required=True, help="ISO 3166-1 alpha-2, e.g. NL")
@click.option("--party-id", required=True, help="3 letters or digits, e.g. TNM")
@click.option("--role", required=True, type=click.Choice(["CPO", "HUB"], case_sensitive=False))
@click.option("--token", required=True, help="Token A we handed them: lets them call our credentials endpoint.")
@click.option("--versions-url", help="Their versions endpoint (needed to register with them).")
@click.option("--their-token", help="Token A they handed us (needed to register with them).")
@click.option("--raw-tokens", is_flag=True, help="Send our token unencoded (pre-2.2 peers) instead of base64.")
def partner_add_command(
    name: str,
    country_code: str,
    party_id: str,
    role: str,
    token: str,
    versions_url: str | None,
    their_token: str | None,
    raw_tokens: bool,
) -> None:
    """Register a CPO or hub that may now run the credentials handshake."""
    try:
        partner = add_partner(
            name=name,
            country_code=country_code,
            party_id=party_id,
            role=role,
            token=token,
            versions_url=versions_url,
            their_token=their_token,
            send_base64_tokens=not raw_tokens,
        )
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    kind = "hub" if partner.is_hub else "CPO"
    click.echo(
        f"added {kind} {partner.name} ({partner.country_code}/{partner.party_id}) as partner "
        f"{partner.id}, status {partner.status.value}"
    )


@commands.command("partners")
def partners_command() -> None:
    """List partners with their status, version and the parties they speak for."""
    partners = list_partners()
    if not partners:
        click.echo("no partners")
        return
    for partner in partners:
        kind = "HUB" if partner.is_hub else "CPO"
        registered = partner.registered_at.strftime("%Y-%m-%d %H:%M UTC") if partner.registered_at else "-"
        click.echo(
            f"{partner.id:>4}  {partner.name:<24} {kind:<4} {partner.country_code}/{partner.party_id}  "
            f"{partner.status.value:<10} version {partner.version or '-':<6} "
            f"endpoints {len(partner.endpoints or [])}  registered {registered}  "
            f"tokens {'base64' if partner.send_base64_tokens else 'raw'}"
        )
        for party in sorted(partner.parties, key=lambda p: (p.country_code, p.party_id, p.role)):
            click.echo(
                f"        {party.role:<5} {party.country_code}/{party.party_id} {party.status}"
                f"{'  ' + party.name if party.name else ''}"
            )


@commands.command("register")
@click.argument("partner_ref", metavar="PARTNER")
@click.option(
    "--our-url",
    envvar="OCPI_PUBLIC_URL",
    help="Base URL where partners reach us (default: SERVER_NAME), e.g. https://emsp.example.com",
)
def register_command(partner_ref: str, our_url: str | None) -> None:
    """Register with PARTNER (id or name) using the token A they gave us."""
    partner = _partner(partner_ref)
    try:
        version = handshake.register_with_partner(
            partner, versions_url=handshake.our_versions_url(our_url), publish=db.session.commit
        )
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    click.echo(f"registered with {partner.name}: OCPI {version.version}, {len(version.endpoints)} endpoints")


@commands.command("update-credentials")
@click.argument("partner_ref", metavar="PARTNER")
@click.option("--our-url", envvar="OCPI_PUBLIC_URL", help="Base URL where partners reach us (default: SERVER_NAME).")
def update_credentials_command(partner_ref: str, our_url: str | None) -> None:
    """Rotate the tokens with PARTNER and fetch its endpoints again (PUT credentials)."""
    partner = _partner(partner_ref)
    try:
        version = handshake.update_with_partner(
            partner, versions_url=handshake.our_versions_url(our_url), publish=db.session.commit
        )
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    click.echo(f"credentials of {partner.name} rotated: OCPI {version.version}, {len(version.endpoints)} endpoints")


@commands.command("unregister")
@click.argument("partner_ref", metavar="PARTNER")
@click.option("--force", is_flag=True, help="Suspend locally even if their side cannot be reached.")
def unregister_command(partner_ref: str, force: bool) -> None:
    """Unregister at PARTNER (DELETE credentials) and suspend the connection."""
    partner = _partner(partner_ref)
    try:
        handshake.unregister_with_partner(partner, force=force)
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    click.echo(f"unregistered {partner.name}; connection suspended")


@commands.command("partner-token")
@click.argument("partner_ref", metavar="PARTNER")
@click.option("--token", required=True, help="A new token A for them to register (again) with.")
def partner_token_command(partner_ref: str, token: str) -> None:
    """Give PARTNER a new token A, e.g. after it unregistered: it is pending again until it registers."""
    partner = _partner(partner_ref)
    try:
        reset_partner_token(partner, token)
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    click.echo(f"{partner.name} may register again with the new token; status {partner.status.value}")


@commands.command("party-conflicts")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Most recent first.")
def party_conflicts_command(limit: int) -> None:
    """List claims on a party that belongs to another connection (or to us): refused, or a hub's claim ended by
    a direct connection. A party belongs to exactly one connection."""
    conflicts = list_conflicts(limit)
    if not conflicts:
        click.echo("no party conflicts")
        return
    for conflict in conflicts:
        seen = conflict.last_seen_at.strftime("%Y-%m-%d %H:%M UTC")
        click.echo(
            f"{seen}  {conflict.country_code}/{conflict.party_id}  {conflict.outcome:<15} "
            f"via {conflict.via:<15} by {conflict.claimant.name!r} (partner {conflict.claimant_partner_id})  "
            f"held by {conflict.holder}  x{conflict.attempts}"
        )
        click.echo(f"        {conflict.message}")
