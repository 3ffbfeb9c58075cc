"""Roaming partners: who they are, which parties they speak for, the credentials handshake with them, and their
lifetime (``states``: which status may go where; ``lifecycle``: register again, suspend, resume, remove)."""
