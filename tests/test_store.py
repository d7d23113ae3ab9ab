from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from app.journal import Journal
from app.store import RecommendationLog, ScoreRejected, make_engine, recommendations, scores

TITLES = ["Heat (1995)", "Misérables, Les (1995)", "Fargo (1996)"]


@pytest.fixture
def log(database_url: str) -> Iterator[RecommendationLog]:
    store = RecommendationLog(make_engine(database_url))
    store.create_tables()
    yield store
    store.engine.dispose()


def recorded(log: RecommendationLog, table) -> list:
    with log.engine.connect() as connection:
        return connection.execute(select(table)).mappings().all()


def record(log: RecommendationLog) -> str:
    return log.record_recommendation(
        age=30, gender="O", occupation="writer", max_recs=3, titles=TITLES, model_version="a" * 64
    )


def test_a_recommendation_is_stored_with_everything_it_answered(log: RecommendationLog) -> None:
    recommendation_id = record(log)
    (row,) = recorded(log, recommendations)
    assert row["id"] == recommendation_id
    assert row["titles"] == TITLES
    assert (row["age"], row["gender"], row["occupation"], row["max_recs"]) == (30, "O", "writer", 3)
    assert row["model_version"] == "a" * 64


def test_ids_are_unique(log: RecommendationLog) -> None:
    assert len({record(log) for _ in range(20)}) == 20


def test_a_score_is_stored_and_rescoring_keeps_the_latest(log: RecommendationLog) -> None:
    recommendation_id = record(log)
    log.record_score(recommendation_id=recommendation_id, movie=TITLES[1], score=2.0)
    log.record_score(recommendation_id=recommendation_id, movie=TITLES[1], score=4.5)
    log.record_score(recommendation_id=recommendation_id, movie=TITLES[0], score=1.0)
    rows = {row["movie"]: row["score"] for row in recorded(log, scores)}
    assert rows == {TITLES[1]: 4.5, TITLES[0]: 1.0}


@pytest.mark.parametrize(
    ("field", "recommendation_id", "movie"), [("id", "f" * 32, TITLES[0]), ("movie", None, "Alien (1979)")]
)
def test_a_score_for_what_was_not_recommended_is_rejected(
    log: RecommendationLog, field: str, recommendation_id: str | None, movie: str
) -> None:
    known = record(log)
    with pytest.raises(ScoreRejected) as rejected:
        log.record_score(recommendation_id=recommendation_id or known, movie=movie, score=3.0)
    assert rejected.value.field == field
    assert recorded(log, scores) == []


def test_concurrent_writers_lose_nothing(log: RecommendationLog) -> None:
    def write(_: int) -> str:
        recommendation_id = record(log)
        log.record_score(recommendation_id=recommendation_id, movie=TITLES[0], score=5.0)
        return recommendation_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(write, range(80)))
    assert {row["id"] for row in recorded(log, recommendations)} == ids
    assert {row["recommendation_id"] for row in recorded(log, scores)} == ids


def test_a_postgresql_url_without_a_driver_uses_psycopg_3() -> None:
    assert make_engine("postgresql://user@127.0.0.1/db").dialect.driver == "psycopg"


@pytest.fixture
def journaled(database_url: str, tmp_path: Path) -> Iterator[RecommendationLog]:
    store = RecommendationLog(make_engine(database_url), Journal(tmp_path / "journal"))
    store.create_tables()
    yield store
    store.engine.dispose()


def test_with_a_journal_a_recommendation_reaches_the_database_when_drained(journaled: RecommendationLog) -> None:
    recommendation_id = record(journaled)
    assert recorded(journaled, recommendations) == []
    assert journaled.drain_journal() == 1
    (row,) = recorded(journaled, recommendations)
    assert (row["id"], row["titles"]) == (recommendation_id, TITLES)
    assert journaled.drain_journal() == 0


def test_a_score_for_a_journaled_recommendation_drains_it_first(journaled: RecommendationLog) -> None:
    recommendation_id = record(journaled)
    journaled.record_score(recommendation_id=recommendation_id, movie=TITLES[2], score=5.0)
    assert [row["id"] for row in recorded(journaled, recommendations)] == [recommendation_id]
    assert [row["score"] for row in recorded(journaled, scores)] == [5.0]


def test_a_new_log_on_the_same_journal_copies_what_the_last_one_left(
    database_url: str, journaled: RecommendationLog, tmp_path: Path
) -> None:
    ids = {record(journaled) for _ in range(5)}
    restarted = RecommendationLog(make_engine(database_url), Journal(tmp_path / "journal"))
    assert restarted.drain_journal() == 5
    assert {row["id"] for row in recorded(restarted, recommendations)} == ids
    assert restarted.drain_journal() == 0
    restarted.engine.dispose()
