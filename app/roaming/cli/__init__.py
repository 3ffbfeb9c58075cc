"""``flask roaming ...``: partners (``partners``), sync and imports (``sync``), tokens and commands (``tokens``),
the quarantine of objects we could not store (``quarantine``).

Each module defines its commands on a group of its own; :func:`roaming_cli_group` puts them under ``roaming``,
called once from ``create_app``.
"""

from __future__ import annotations

from flask.cli import AppGroup

from app.roaming.cli import partners, quarantine, sync, tokens


def roaming_cli_group() -> AppGroup:
    group = AppGroup("roaming", help="OCPI roaming partners, sync, tokens and whitelists.")
    for module in (partners, sync, tokens, quarantine):
        for command in module.commands.commands.values():
            group.add_command(command)
    return group
