"""``flask roaming ...``. Commands live in ``cli_partners``, ``cli_sync`` and ``cli_tokens``; importing them
adds them to :data:`roaming_cli`."""

from __future__ import annotations

from flask.cli import AppGroup

roaming_cli = AppGroup("roaming", help="OCPI roaming partners, sync, tokens and whitelists.")


def load_commands() -> AppGroup:
    from app.roaming import cli_partners, cli_sync, cli_tokens  # noqa: F401  (imported for their commands)

    return roaming_cli
