"""Who is told that a new CDR was stored: other packages plug in here (rating queues it to be priced).

Roaming sits below rating in the layers, so it cannot call rating; instead ``app.rating.init_app`` appends its
listener to :data:`AFTER_CDR_STORED`, the way billing adds its rule to ``STANDING_CHECKS``. The OCPI door calls
:func:`cdr_stored` once the CDR is committed, so what a listener does is a unit of work of its own: a CDR we
cannot price is still stored and acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable

# Takes the id of a newly stored, committed CDR of one of our accounts. Keep it quick (buffer or queue the
# work): it runs inside the CPO's request.
CdrListener = Callable[[int], None]

AFTER_CDR_STORED: list[CdrListener] = []


def add_cdr_listener(listener: CdrListener) -> None:
    """Plug ``listener`` in (from a package's ``init_app``); a second call with the same one changes nothing,
    so every app built in one process (tests, CLI) can call it."""
    if listener not in AFTER_CDR_STORED:
        AFTER_CDR_STORED.append(listener)


def cdr_stored(cdr_id: int) -> None:
    """Tell every listener, in the order they were plugged in, that CDR ``cdr_id`` was stored and committed."""
    for listener in AFTER_CDR_STORED:
        listener(cdr_id)
