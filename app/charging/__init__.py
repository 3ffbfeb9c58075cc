"""Charging: the e-MSP's record of what drivers did (sessions, CDRs, authorizations), whoever delivered it.
``models`` holds the records (written by roaming), ``services`` the reads over them."""
