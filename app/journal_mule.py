"""The uwsgi mule (deploy/uwsgi.ini): copies the workers' recommendation journals into the database,
publishes the experiment's state for this replica's workers (app/experiment/publication.py), and keeps the
experiment's guardrail (app/experiment/report.py)."""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import OperationalError

from app.experiment.publication import PUBLISH_INTERVAL_SECONDS, publish
from app.experiment.report import guard
from main import app

DRAIN_INTERVAL_SECONDS = 0.1
# How often the guardrail reads a running experiment's figures: each read adds up all of its units.
GUARD_INTERVAL_SECONDS = 5.0
log = logging.getLogger(__name__)


def work_forever() -> None:
    recommendation_log = app.extensions["recommendation_log"]
    directory = app.extensions["arms"].directory
    next_publication = next_guard = 0.0
    while True:
        try:
            recommendation_log.drain_journal()
            if directory is not None and time.monotonic() >= next_publication:
                experiment = publish(recommendation_log.engine, directory)
                next_publication = time.monotonic() + PUBLISH_INTERVAL_SECONDS
                if experiment is not None and time.monotonic() >= next_guard:
                    guard(recommendation_log.engine, experiment)
                    next_guard = time.monotonic() + GUARD_INTERVAL_SECONDS
        except OperationalError as error:  # the database is away: lines wait in the journal, workers keep their arms
            log.warning("cannot reach the database yet: %s", str(error.orig).strip().splitlines()[0])
            time.sleep(1)
        time.sleep(DRAIN_INTERVAL_SECONDS)


work_forever()
