"""Portal fixtures: the registered partner and the fake CPO of the roaming tests (remote start and stop)."""

from tests.roaming.conftest import fake_cpo, partner  # noqa: F401  (fixtures)
