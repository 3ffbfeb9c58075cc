"""OCPI tokens on the wire: how we make, hash and read the ``Authorization: Token ...`` header.

OCPI 2.2.1 sends the token base64-encoded; 2.1.1 peers and many 2.2 implementations send it raw. We accept
both (tolerant in) and store only a SHA-256 of the tokens we issue.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

ROUTING_HEADERS = ("OCPI-from-country-code", "OCPI-from-party-id", "OCPI-to-country-code", "OCPI-to-party-id")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh credentials token (printable, URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def candidate_tokens(header_value: str | None) -> list[str]:
    """The token as sent and, if it is valid base64 of printable text, decoded."""
    if not header_value:
        return []
    scheme, _, value = header_value.strip().partition(" ")
    if scheme.lower() != "token" or not value.strip():
        return []
    raw = value.strip()
    candidates = [raw]
    try:
        # The spec's own example encodes a trailing newline ("example-token\n"): ignore surrounding whitespace.
        decoded = base64.b64decode(raw, validate=True).decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return candidates
    if decoded and decoded.isprintable() and decoded != raw:
        candidates.append(decoded)
    return candidates


def encode_token(token: str, as_base64: bool) -> str:
    return base64.b64encode(token.encode("utf-8")).decode("ascii") if as_base64 else token
