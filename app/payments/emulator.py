"""Run localstripe (a Stripe API emulator) on a loopback port, in memory only: the embedded default for
``make run`` and the emulator the tests start.

``python -m localstripe`` listens on every interface and pickles its store to the shared
``/tmp/localstripe.pickle`` after each write (and reloads it at start), which would leak state between
concurrent test runs; this runner binds 127.0.0.1 and keeps the store in memory.

Usage: python -m app.payments.emulator PORT
"""

from __future__ import annotations

import sys

from aiohttp import web
from localstripe import resources, server


def main() -> None:
    port = int(sys.argv[1])
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
