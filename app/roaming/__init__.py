"""Roaming: exchange with CPOs and hubs over OCPI."""
