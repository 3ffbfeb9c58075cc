"""Celery worker and beat entry point: ``celery -A app.worker worker`` / ``celery -A app.worker beat``.

``create_app`` wires every package (its tasks, beat schedule and standing checks), as in the web process."""

from app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
