"""The uwsgi mule (deploy/uwsgi.ini): copies the workers' recommendation journals into the database, and
publishes and guards the experiment for this replica's workers (app/mule.py)."""

from __future__ import annotations

from app.mule import work_forever
from main import app

work_forever(app.extensions["recommendation_log"], app.extensions["arms"].directory)
