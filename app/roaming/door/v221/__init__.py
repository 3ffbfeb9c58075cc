"""OCPI 2.2.1, e-MSP side. Importing the module files registers their routes on :data:`bp`."""

from app.roaming.door.v221 import (  # noqa: F401  (imported for their routes)
    cdrs,
    commands,
    credentials,
    hubclientinfo,
    locations,
    sessions,
    tariffs,
    tokens,
    versions,
)
from app.roaming.door.v221.blueprint import bp

__all__ = ["bp"]
