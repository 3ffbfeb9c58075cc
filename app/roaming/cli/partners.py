"""``flask roaming ...`` commands (partners) over a connection's lifetime: add, list, register (again), rotate,
suspend, resume, unregister, hand out a new token A, remove. Each calls one service of
``app.roaming.partners`` (they flush, the command commits) and is audited as ``cli``."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.audit.services import Actor
from app.extensions import db
from app.roaming.models import Partner, PartnerStatus
from app.roaming.partners import lifecycle
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

OUR_URL_HELP = (
    "Where you believe partners reach us; refused unless it is the configured OCPI base URL "
    "(OCPI_BASE_URL, else PUBLIC_BASE_URL), which is what the handshake hands out."
)


def _actor() -> Actor:
    return Actor.system("cli")


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
            actor=_actor(),
        )
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    kind = "hub" if partner.is_hub else "CPO"
    click.echo(
        f"added {kind} {partner.name} ({partner.country_code}/{partner.party_id}) as partner "
        f"{partner.id}, status {partner.status.value}"
    )


def _status_line(partner: Partner) -> str | None:
    """Since when, by whom and why a partner is in a status other than registered."""
    if partner.status == PartnerStatus.REGISTERED or partner.status_changed_at is None:
        return None
    since = partner.status_changed_at.strftime("%Y-%m-%d %H:%M UTC")
    reason = f": {partner.status_reason}" if partner.status_reason else ""
    return f"        {partner.status.value} since {since} by {partner.status_changed_by or '-'}{reason}"


@commands.command("partners")
def partners_command() -> None:
    """List partners with their status (since when, by whom, why), version and the parties they speak for."""
    partners = list_partners()
    if not partners:
        click.echo("no partners")
        return
    for partner in partners:
        kind = "HUB" if partner.is_hub else "CPO"
        registered = partner.registered_at.strftime("%Y-%m-%d %H:%M UTC") if partner.registered_at else "-"
        click.echo(
            f"{partner.id:>4}  {partner.name:<24} {kind:<4} {partner.country_code}/{partner.party_id}  "
            f"{partner.status.value:<12} version {partner.version or '-':<6} "
            f"endpoints {len(partner.endpoints or [])}  registered {registered}  "
            f"tokens {'base64' if partner.send_base64_tokens else 'raw'}"
        )
        status_line = _status_line(partner)
        if status_line:
            click.echo(status_line)
        for party in sorted(partner.parties, key=lambda p: (p.country_code, p.party_id, p.role)):
            click.echo(
                f"        {party.role:<5} {party.country_code}/{party.party_id} {party.status}"
                f"{'  ' + party.name if party.name else ''}"
            )


@commands.command("register")
@click.argument("partner_ref", metavar="PARTNER")
@click.option("--their-token", help="A (new) token A they handed us, e.g. to register again after unregistering.")
@click.option("--versions-url", help="Their versions endpoint, when it is new or moved.")
@click.option("--our-url", envvar="OCPI_PUBLIC_URL", help=OUR_URL_HELP)
@click.option("--reason", help="Why (kept in the audit trail).")
def register_command(
    partner_ref: str, their_token: str | None, versions_url: str | None, our_url: str | None, reason: str | None
) -> None:
    """Register with PARTNER (id or name) using the token A they gave us: the first time, or again after the
    connection was unregistered (by them or us) or removed. The partner is updated in place: same row, parties
    and objects."""
    partner = _partner(partner_ref)
    try:
        version = lifecycle.register(
            partner,
            actor=_actor(),
            their_token=their_token,
            versions_url=versions_url,
            claimed_base_url=our_url,
            reason=reason,
            publish=db.session.commit,
        )
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    click.echo(f"registered with {partner.name}: OCPI {version.version}, {len(version.endpoints)} endpoints")


@commands.command("update-credentials")
@click.argument("partner_ref", metavar="PARTNER")
@click.option("--our-url", envvar="OCPI_PUBLIC_URL", help=OUR_URL_HELP)
@click.option("--reason", help="Why (kept in the audit trail).")
def update_credentials_command(partner_ref: str, our_url: str | None, reason: str | None) -> None:
    """Rotate the tokens with PARTNER and fetch its endpoints again (PUT credentials): our previous token stops
    working at once."""
    partner = _partner(partner_ref)
    try:
        version = lifecycle.rotate_credentials(
            partner, actor=_actor(), claimed_base_url=our_url, reason=reason, publish=db.session.commit
        )
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    click.echo(f"credentials of {partner.name} rotated: OCPI {version.version}, {len(version.endpoints)} endpoints")


@commands.command("unregister")
@click.argument("partner_ref", metavar="PARTNER")
@click.option("--force", is_flag=True, help="Unregister here even if their side cannot be reached.")
@click.option("--reason", help="Why (kept on the partner and in the audit trail).")
def unregister_command(partner_ref: str, force: bool, reason: str | None) -> None:
    """Unregister at PARTNER (DELETE credentials): no token works either way any more."""
    partner = _partner(partner_ref)
    try:
        lifecycle.unregister(partner, actor=_actor(), force=force, reason=reason)
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    click.echo(f"unregistered {partner.name}; status {partner.status.value}")


@commands.command("suspend")
@click.argument("partner_ref", metavar="PARTNER")
@click.option("--reason", required=True, help="Why we suspend them (kept on the partner and audited).")
def suspend_command(partner_ref: str, reason: str) -> None:
    """Suspend PARTNER: our cards are refused there (NOT_ALLOWED, tokens listed invalid); nothing is pushed,
    pulled or commanded; their sessions and CDRs are still accepted. Credentials are kept: `resume` undoes it."""
    partner = _partner(partner_ref)
    try:
        lifecycle.suspend(partner, actor=_actor(), reason=reason)
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    click.echo(f"suspended {partner.name}: {partner.status_reason}")


@commands.command("resume")
@click.argument("partner_ref", metavar="PARTNER")
@click.option("--reason", help="Why (kept on the partner and audited).")
def resume_command(partner_ref: str, reason: str | None) -> None:
    """Resume a suspended PARTNER: authorizations, token pushes, pulls and commands again."""
    partner = _partner(partner_ref)
    try:
        lifecycle.resume(partner, actor=_actor(), reason=reason)
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    click.echo(f"resumed {partner.name}; status {partner.status.value}")


@commands.command("partner-token")
@click.argument("partner_ref", metavar="PARTNER")
@click.option("--token", required=True, help="A new token A for them to register (again) with.")
@click.option("--reason", help="Why (kept on the partner and audited).")
def partner_token_command(partner_ref: str, token: str, reason: str | None) -> None:
    """Give PARTNER a new token A (after it unregistered, was suspended or removed, or lost its token): it is
    pending until it registers again; its old token stops working now."""
    partner = _partner(partner_ref)
    try:
        reset_partner_token(partner, token, actor=_actor(), reason=reason)
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    click.echo(f"{partner.name} may register again with the new token; status {partner.status.value}")


@commands.command("partner-remove")
@click.argument("partner_ref", metavar="PARTNER")
@click.option(
    "--force",
    is_flag=True,
    help="Remove even while its sessions still wait for CDRs, or when our credentials cannot be deleted there.",
)
@click.option("--reason", help="Why (kept on the partner and audited).")
def partner_remove_command(partner_ref: str, force: bool, reason: str | None) -> None:
    """Remove PARTNER for good: its credentials die (401), nothing is pushed or pulled, its locations are hidden
    from drivers; its sessions, CDRs and tariffs stay for the money already owed."""
    partner = _partner(partner_ref)
    try:
        removal = lifecycle.remove(partner, actor=_actor(), force=force, reason=reason)
    except PartnerError as error:
        raise _fail(error) from error
    db.session.commit()
    click.echo(
        f"removed {partner.name}: {'their side was told' if removal.told_them else 'their side was not told'}, "
        f"{removal.token_pushes_dropped} pending token push(es) dropped"
        + (f", {removal.sessions_awaiting_cdr} session(s) without CDR" if removal.sessions_awaiting_cdr else "")
    )


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
