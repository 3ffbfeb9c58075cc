"""What CPOs send us (OCPI Receiver and pull client): locations, tariffs, sessions, CDRs, and file importers."""
