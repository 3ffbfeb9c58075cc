"""Why one unit of a batch failed, in words finance can act on.

A batch (rating the pending CDRs, an invoice run) does each unit on its own and records why a unit failed
(DESIGN.md §5: "a batch fails one unit and goes on"). The raw exception is often useless or dangerous to show:
a database error's text carries the whole SQL statement and its parameters (other customers' rows), a decimal
error says only ``[<class 'decimal.InvalidOperation'>]``. :func:`failure_reason` turns any exception into one
short line: our own errors' messages as they are, others with their type, the database's own message (first
line, no statement), and a plain explanation of the decimal signals a number too large or not a number raises.
"""

from __future__ import annotations

from decimal import DecimalException, DivisionByZero, InvalidOperation, Overflow

from sqlalchemy.exc import DBAPIError, StatementError

MAX_REASON = 500


def failure_reason(error: BaseException) -> str:
    """One line (at most :data:`MAX_REASON` characters) saying why a unit of work failed."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        detail = str(error.orig).strip().splitlines()
        text = f"database refused it ({type(error.orig).__name__}): {detail[0] if detail else ''}"
    elif isinstance(error, StatementError) and error.orig is not None:
        text = failure_reason(error.orig)
    elif isinstance(error, (InvalidOperation, Overflow, DivisionByZero)):
        text = (
            f"a number out of range or not a number ({type(error).__name__}"
            f"{': ' + _decimal_signals(error) if error.args else ''})"
        )
    elif isinstance(error, DecimalException):
        text = f"a number out of range ({type(error).__name__})"
    else:
        message = str(error).strip().splitlines()
        ours = type(error).__module__.startswith("app.")  # our own errors say what they are
        text = (message[0] if ours else f"{type(error).__name__}: {message[0]}") if message else type(error).__name__
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _decimal_signals(error: BaseException) -> str:
    """``[<class 'decimal.DivisionImpossible'>]`` → ``DivisionImpossible``."""
    names = (
        [getattr(arg, "__name__", str(arg)) for arg in error.args[0]]
        if error.args and isinstance(error.args[0], list)
        else [str(arg) for arg in error.args]
    )
    return ", ".join(names)
