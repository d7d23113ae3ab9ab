"""The uwsgi mule (deploy/uwsgi.ini): copies the workers' recommendation journals into the database."""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import OperationalError

from main import app

DRAIN_INTERVAL_SECONDS = 0.1
log = logging.getLogger(__name__)


def drain_forever() -> None:
    recommendation_log = app.extensions["recommendation_log"]
    while True:
        try:
            recommendation_log.drain_journal()
        except OperationalError as error:  # the database is away: the lines wait in the journal
            log.warning("cannot copy the journal into the database yet: %s", str(error.orig).strip().splitlines()[0])
            time.sleep(1)
        time.sleep(DRAIN_INTERVAL_SECONDS)


drain_forever()
