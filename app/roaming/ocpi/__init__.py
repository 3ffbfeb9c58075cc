"""The OCPI protocol: errors and status codes, the one reader of what partners send, the envelope and responses,
tokens on the wire, and the outgoing client (with its URL guard). No routes: the door is ``app.roaming.door``."""
