"""OCPI errors: an exception answered in the OCPI envelope with its OCPI status code and HTTP status."""

from __future__ import annotations

# OCPI status codes (status_codes.asciidoc)
SUCCESS = 1000
CLIENT_ERROR = 2000
INVALID_OR_MISSING_PARAMETERS = 2001
NOT_ENOUGH_INFORMATION = 2002
UNKNOWN_LOCATION = 2003
UNKNOWN_TOKEN = 2004
SERVER_ERROR = 3000
UNABLE_TO_USE_CLIENT_API = 3001
UNSUPPORTED_VERSION = 3002
NO_MATCHING_ENDPOINTS = 3003


class OcpiError(Exception):
    """An error answered in the OCPI envelope with a specific OCPI status code and HTTP status."""

    def __init__(self, status_code: int, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status
