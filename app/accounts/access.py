"""Who may enter the driver portal, and the 404-for-others rule."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, redirect, request, url_for
from flask_login import current_user
from flask_login import login_required as _flask_login_required

from app.accounts.models import Role

F = TypeVar("F", bound=Callable[..., Any])


def login_required(view: F) -> F:
    """Flask-Login's ``login_required`` (any logged-in user), keeping the view's type: flask_login ships none."""
    return cast(F, _flask_login_required(view))


def driver_required(view: F) -> F:
    """The portal's one decorator: a logged-in driver with an account. Staff are sent to the back office."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        if current_user.role != Role.DRIVER or current_user.account is None:
            if current_user.is_staff:
                return redirect(url_for("backoffice.dashboard"))
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def owned_or_404(obj: Any, account_id_attr: str = "account_id") -> Any:
    """Return ``obj`` if it belongs to the current driver's account, else 404 (never 403: no leaking that it
    exists)."""
    if obj is None or getattr(obj, account_id_attr, None) != current_user.account_id:
        abort(404)
    return obj
