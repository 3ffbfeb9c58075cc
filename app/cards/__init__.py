"""Charge cards (RFID) and app tokens: the driver-facing side of OCPI Tokens."""
