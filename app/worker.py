"""Celery worker and beat entry point: ``celery -A app.worker worker`` / ``celery -A app.worker beat``.

``create_app`` wires every package (its tasks, beat schedule and standing checks), as in the web process; then a
``CELERY_BEAT_INTERVALS`` entry that names no periodic task stops the process at start rather than being ignored."""

from app import create_app
from app.jobs import check_beat_intervals

flask_app = create_app()
celery = flask_app.extensions["celery"]
check_beat_intervals()
