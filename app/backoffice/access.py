"""The back office's one decorator: a logged-in staff user holding one of the given roles."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, redirect, request, url_for
from flask_login import current_user

from app.accounts.models import Role

F = TypeVar("F", bound=Callable[..., Any])


def staff_required(*roles: Role) -> Callable[[F], F]:
    """Allow staff with one of ``roles`` (admins pass every staff check); no roles means any staff role."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
            if not current_user.is_staff:
                abort(403)
            if roles and not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
