"""The mule's loops (app/mule.py): the copy never waits for the experiment's publication or guardrail, and a
step that fails is logged and tried again, never the end of the loop."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app import mule
from app.store.journal import Journal
from app.store.recommendation_log import RecommendationLog, make_engine, recommendations, sqlite_url

# The copy lag the mule keeps while a guardrail works (issue 24): under a second.
MOST_LAG_SECONDS = 1.0


@pytest.fixture
def journaled(tmp_path: Path) -> Iterator[RecommendationLog]:
    store = RecommendationLog(make_engine(sqlite_url(tmp_path / "log.sqlite3")), Journal(tmp_path / "journal"))
    store.create_tables()
    yield store
    store.engine.dispose()


def copy_lag(log: RecommendationLog) -> float:
    """Seconds from a recommendation journaled to its row in the database."""
    journaled_at = time.monotonic()
    recommendation_id = log.record_recommendation(
        age=30, gender="F", occupation="writer", max_recs=1, titles=["Heat (1995)"], model_version="a" * 64
    )
    query = select(recommendations.c.id).where(recommendations.c.id == recommendation_id)
    while True:
        with log.engine.connect() as connection:
            if connection.execute(query).first() is not None:
                return time.monotonic() - journaled_at
        assert time.monotonic() - journaled_at < 30, "never copied"
        time.sleep(0.01)


def test_the_copy_keeps_up_while_the_guardrail_works_for_seconds(
    journaled: RecommendationLog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    guarding = threading.Event()

    def slow_guard(_engine: object, _experiment: object) -> None:
        guarding.set()
        time.sleep(4)  # adding up every unit of a long experiment

    monkeypatch.setattr(mule, "publish", lambda _engine, _directory: "a running experiment")
    monkeypatch.setattr(mule, "guard", slow_guard)
    stopped = threading.Event()
    worker = threading.Thread(target=mule.work_forever, args=(journaled, tmp_path / "experiment", stopped))
    worker.start()
    try:
        assert guarding.wait(10)
        lags = [copy_lag(journaled) for _ in range(3)]
        assert guarding.is_set() and max(lags) < MOST_LAG_SECONDS, lags
    finally:
        stopped.set()
        worker.join(timeout=30)


def test_a_step_that_fails_is_logged_and_the_loop_goes_on(
    journaled: RecommendationLog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failures = {"copy": 1}
    drain = journaled.drain_journal

    def failing_once() -> int:
        if failures["copy"]:
            failures["copy"] -= 1
            raise RuntimeError("a bug in the copy")
        return drain()

    monkeypatch.setattr(journaled, "drain_journal", failing_once)
    monkeypatch.setattr(mule, "publish", lambda _engine, _directory: (_ for _ in ()).throw(ValueError("a bad file")))
    stopped = threading.Event()
    worker = threading.Thread(target=mule.work_forever, args=(journaled, tmp_path / "experiment", stopped))
    with caplog.at_level(logging.ERROR):
        worker.start()
        try:
            assert copy_lag(journaled) < 5
        finally:
            stopped.set()
            worker.join(timeout=30)
    failed = {record.getMessage().split(" failed")[0] for record in caplog.records if record.levelno == logging.ERROR}
    assert failed == {"journal copy", "experiment publication"}
    assert not worker.is_alive()
