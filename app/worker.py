"""Celery worker and beat entry point: ``celery -A app.worker worker`` / ``celery -A app.worker beat``."""

from app import create_app
from app.jobs import import_task_modules

flask_app = create_app()
celery = flask_app.extensions["celery"]
import_task_modules()
