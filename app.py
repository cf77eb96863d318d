"""Entry point for `flask --app app` and `gunicorn app:app`."""

from blog import create_app

app = create_app()
