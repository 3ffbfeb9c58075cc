"""``flask roaming ...`` commands (partners)."""

from app.roaming.cli import roaming_cli  # noqa: F401
