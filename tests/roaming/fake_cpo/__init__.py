"""A small OCPI 2.2.1 CPO that the tests run on loopback: it speaks the real protocol over HTTP.

The core (``server.py``) handles auth, the envelope and recording; handler modules add routes:
``handshake.py`` (versions, credentials), ``sender.py`` (paged Locations/Tariffs/Sessions/CDRs), ``receiver.py``
(Tokens and Commands receivers). Behaviour switches (``cpo.misbehave``) let tests make it fail on purpose.
"""

from tests.roaming.fake_cpo.server import FakeCpo, start_fake_cpo

__all__ = ["FakeCpo", "start_fake_cpo"]
