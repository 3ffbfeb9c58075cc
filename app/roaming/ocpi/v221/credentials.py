"""OCPI 2.2.1 credentials module (e-MSP side). Routes are added to the shared blueprint."""

from app.roaming.ocpi.v221.blueprint import bp  # noqa: F401
