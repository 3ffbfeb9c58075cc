"""Flask extensions, created unbound here and bound to the app in ``create_app``."""

from __future__ import annotations

from celery import Celery
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from app.db import Base
from app.security import is_machine_request

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
# No rate limit applies to the machine doors (partners are authenticated, their volume is contractual); saying so
# up front spares Flask-Limiter its per-request search for limits that do not exist.
limiter.request_filter(is_machine_request)
babel = Babel()
api = Api()
# Tasks run inside a Flask app context (see app.jobs.FlaskTask).
celery = Celery("emsp", task_cls="app.jobs:FlaskTask")
