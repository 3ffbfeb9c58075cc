"""Celery worker entry point: ``celery -A app.worker worker``."""

from app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
