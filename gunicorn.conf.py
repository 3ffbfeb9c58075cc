"""gunicorn settings, read automatically by ``gunicorn wsgi:app`` started from the project directory.

Every value can be overridden on the command line or with ``GUNICORN_CMD_ARGS``; the ones here can also be set
through the environment variables named below.
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
# CPOs and hubs keep their HTTPS connections open and send many requests on each (real-time authorizations,
# CDR batches). A threaded worker keeps connections alive between requests, so a request does not pay for a new
# TCP connection, and overlaps one request's database wait with another's work. Measured on 2 cores (bench/):
# 8 threads ingest more CDRs (289/s against 247/s with 4: a CDR commit waits for the WAL flush) but real-time
# authorization at 300/s queues far longer (p50 288 ms against 23 ms: more threads fight over the GIL). The
# driver waiting at a charge point wins; a host that only ingests CDRs can set GUNICORN_THREADS=8.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", 4))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 30))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
graceful_timeout = 30


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """The worker has loaded the app: its ~250,000 objects (modules, classes, routes, schemas) live as long as the
    process. Frozen out of the garbage collector's reach, they are no longer walked by each full collection, which
    took ~110 ms with every thread of the worker stopped (measured in-process, about one in 5,000 API calls): a
    stall of every request the worker holds. Collected first, so no garbage is frozen with them."""
    import gc

    gc.collect()
    gc.freeze()


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    """Write what this worker still buffers: authorization log rows (app/roaming/send/authorization_log.py) and
    the API devices' "last used" (app/accounts/api_tokens.py)."""
    app = getattr(worker, "wsgi", None)  # the Flask app (wsgi:app) once the worker has loaded it
    if app is not None and hasattr(app, "extensions"):
        from app.accounts.api_tokens import flush_last_used
        from app.roaming.send.authorization_log import flush_pending

        flush_pending(app)
        flush_last_used(app)
