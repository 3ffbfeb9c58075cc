"""The error of partner operations, in a module of its own so that every room of ``partners`` can raise it."""

from __future__ import annotations

from app.roaming.ocpi.errors import CLIENT_ERROR


class PartnerError(Exception):
    """A partner operation failed. ``status_code`` is the OCPI status to answer with when it happened inside an
    OCPI request (2001 bad credentials, 3001 cannot use their API, 3002 no common version, 3003 endpoints)."""

    def __init__(self, message: str, status_code: int = CLIENT_ERROR, http_status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.http_status = http_status
