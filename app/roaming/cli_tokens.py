"""``flask roaming ...`` commands (tokens)."""

from app.roaming.cli import roaming_cli  # noqa: F401
