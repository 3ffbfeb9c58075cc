"""The back office's one decorator: a logged-in staff user holding one of the given roles."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import abort, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts.models import Role

P = ParamSpec("P")
R = TypeVar("R")


def staff_required(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R | Response]]:
    """Allow staff with one of ``roles`` (admins pass every staff check); no roles means any staff role."""

    def decorator(view: Callable[P, R]) -> Callable[P, R | Response]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            if not current_user.is_authenticated:
                return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
            if not current_user.is_staff:
                abort(403)
            if roles and not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator
