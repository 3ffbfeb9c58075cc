"""Charging: the e-MSP's record of what drivers did (sessions, CDRs, authorizations), whoever delivered it."""
