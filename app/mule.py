"""What the uwsgi mule (app/journal_mule.py) does, in two loops that never wait for each other.

The copy of the workers' recommendation journals into the database runs in the mule's own thread every
DRAIN_INTERVAL_SECONDS, so that a score waits for its recommendation a fraction of a second. The experiment's
publication (app/experiment/publication.py) and guardrail (app/experiment/report.py) run in a second thread
with a database connection of its own: a guardrail that adds up every unit of an experiment, or a publication
that writes a candidate model, never holds the copy back. Each step catches and logs its own failure, and its
loop goes on: a database outage is one WARNING line a second; anything else, one ERROR with its traceback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from app.experiment.publication import PUBLISH_INTERVAL_SECONDS, publish
from app.experiment.report import guard
from app.store.recommendation_log import RecommendationLog, make_engine

DRAIN_INTERVAL_SECONDS = 0.1
# How often the guardrail reads a running experiment's figures: each read adds up all of its units.
GUARD_INTERVAL_SECONDS = 5.0
# After a failure, a step waits this long before it tries again.
RETRY_SECONDS = 1.0
log = logging.getLogger(__name__)
Result = TypeVar("Result")


def attempt(step: str, action: Callable[..., Result], *arguments: object) -> tuple[bool, Result | None]:
    """(whether it worked, what it returned): a failure is logged, never raised."""
    try:
        return True, action(*arguments)
    except OperationalError as error:  # the database is away: lines wait in the journal, workers keep their arms
        log.warning("%s: cannot reach the database yet: %s", step, str(error.orig or error).strip().splitlines()[0])
    except Exception:
        log.exception("%s failed; trying again in %s s", step, RETRY_SECONDS)
    return False, None


def copy_forever(recommendation_log: RecommendationLog, stopped: threading.Event) -> None:
    while not stopped.is_set():
        worked, _ = attempt("journal copy", recommendation_log.drain_journal)
        stopped.wait(DRAIN_INTERVAL_SECONDS if worked else RETRY_SECONDS)


def keep_experiment_forever(engine: Engine, directory: Path, stopped: threading.Event) -> None:
    """Publish the experiment's state for this replica's workers, and keep its guardrail."""
    next_guard = 0.0
    while not stopped.is_set():
        worked, experiment = attempt("experiment publication", publish, engine, directory)
        if experiment is not None and time.monotonic() >= next_guard:
            guarded, _ = attempt("experiment guardrail", guard, engine, experiment)
            next_guard = time.monotonic() + (GUARD_INTERVAL_SECONDS if guarded else RETRY_SECONDS)
        stopped.wait(PUBLISH_INTERVAL_SECONDS if worked else RETRY_SECONDS)


def work_forever(
    recommendation_log: RecommendationLog, experiment_dir: Path | None, stopped: threading.Event | None = None
) -> None:
    """The mule's work, until stopped is set (never, in a mule: uwsgi ends it)."""
    stopped = stopped or threading.Event()
    if experiment_dir is not None:
        own_engine = make_engine(recommendation_log.engine.url.render_as_string(hide_password=False))
        threading.Thread(
            target=keep_experiment_forever, args=(own_engine, experiment_dir, stopped), name="experiment", daemon=True
        ).start()
    copy_forever(recommendation_log, stopped)
