"""``flask roaming ...`` commands (sync)."""

from app.roaming.cli import roaming_cli  # noqa: F401
