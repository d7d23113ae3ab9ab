from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.store.journal import Journal
from app.store.recommendation_ids import RecommendationIds
from app.store.recommendation_log import (
    PENDING_ID_SECONDS,
    SCORE_WAIT_SECONDS,
    RecommendationLog,
    RecommendationPending,
    ScoreRejected,
    make_engine,
    metadata,
    recommendations,
    scores,
)

TITLES = ["Heat (1995)", "Misérables, Les (1995)", "Fargo (1996)"]


def recorded(log: RecommendationLog, table) -> list:
    with log.engine.connect() as connection:
        return connection.execute(select(table)).mappings().all()


def record(log: RecommendationLog, *, explain: bool = False) -> str:
    return log.record_recommendation(
        age=30, gender="O", occupation="writer", max_recs=3, titles=TITLES, model_version="a" * 64, explain=explain
    )


def test_a_recommendation_is_stored_with_everything_it_answered(log: RecommendationLog) -> None:
    recommendation_id = record(log)
    (row,) = recorded(log, recommendations)
    assert row["id"] == recommendation_id
    assert row["titles"] == TITLES
    assert (row["age"], row["gender"], row["occupation"], row["max_recs"]) == (30, "O", "writer", 3)
    assert row["model_version"] == "a" * 64
    assert row["explain"] is False


def test_a_recommendation_keeps_whether_reasons_were_shown(log: RecommendationLog) -> None:
    shown, not_shown = record(log, explain=True), record(log, explain=False)
    assert {row["id"]: row["explain"] for row in recorded(log, recommendations)} == {shown: True, not_shown: False}


def made_before_reasons(database_url: str) -> str:
    """The database as a version before reasons left it: no explain column, one recommendation recorded."""
    engine = make_engine(database_url)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text('ALTER TABLE recommendations DROP COLUMN "explain"'))
        connection.execute(text(
            "INSERT INTO recommendations (id, created_at, age, gender, occupation, max_recs, titles, model_version) "
            "VALUES ('old', '2026-01-01 00:00:00+00:00', 30, 'F', 'writer', 1, '[\"Heat (1995)\"]', 'v1')"
        ))  # fmt: skip
    engine.dispose()
    return "old"


def test_a_database_made_before_reasons_gains_the_column_and_its_rows_count_as_not_shown(database_url: str) -> None:
    old = made_before_reasons(database_url)
    log = RecommendationLog(make_engine(database_url))
    log.create_tables()
    new = record(log, explain=True)
    assert {row["id"]: row["explain"] for row in recorded(log, recommendations)} == {old: False, new: True}
    log.record_score(recommendation_id=old, movie="Heat (1995)", score=4.0)
    log.engine.dispose()


def test_replicas_starting_together_on_an_old_database_add_the_column_once(database_url: str) -> None:
    made_before_reasons(database_url)
    logs = [RecommendationLog(make_engine(database_url)) for _ in range(6)]
    barrier = threading.Barrier(len(logs))

    def start(log: RecommendationLog) -> None:
        barrier.wait()
        log.create_tables()

    with ThreadPoolExecutor(len(logs)) as pool:
        list(pool.map(start, logs))  # raises what any start raised
    assert record(logs[0], explain=True)
    for log in logs:
        log.engine.dispose()


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


def test_with_a_journal_a_recommendation_reaches_the_database_when_drained(journaled: RecommendationLog) -> None:
    recommendation_id = record(journaled)
    assert recorded(journaled, recommendations) == []
    assert journaled.drain_journal() == 1
    (row,) = recorded(journaled, recommendations)
    assert (row["id"], row["titles"]) == (recommendation_id, TITLES)
    assert journaled.drain_journal() == 0


def test_a_score_for_a_journaled_recommendation_is_pending_until_a_drainer_copies_it(
    journaled: RecommendationLog,
) -> None:
    recommendation_id = record(journaled)
    with pytest.raises(RecommendationPending):
        journaled.record_score(recommendation_id=recommendation_id, movie=TITLES[2], score=5.0)
    journaled.drain_journal()
    journaled.record_score(recommendation_id=recommendation_id, movie=TITLES[2], score=5.0)
    assert [row["score"] for row in recorded(journaled, scores)] == [5.0]


def test_a_score_never_waits_for_a_drainer_that_holds_the_journal(journaled: RecommendationLog) -> None:
    """A mule holds the drain lock while it talks to the database, which an outage can make long."""
    recommendation_id = record(journaled)
    with journaled.journal.draining():  # a mule stuck in database I/O
        started = time.monotonic()
        with pytest.raises(RecommendationPending):
            journaled.record_score(recommendation_id=recommendation_id, movie=TITLES[0], score=4.0)
        assert time.monotonic() - started < 1.0


def test_a_line_journaled_before_reasons_existed_is_copied_as_not_shown(
    journaled: RecommendationLog, tmp_path: Path
) -> None:
    line = {"id": "old", "created_at": "2026-01-01T00:00:00+00:00", "age": 30, "gender": "F", "occupation": "writer",
            "max_recs": 1, "titles": ["Heat (1995)"], "model_version": "v1"}  # fmt: skip
    journaled.journal.append(line)
    shown = record(journaled, explain=True)
    assert journaled.drain_journal() == 2
    assert {row["id"]: row["explain"] for row in recorded(journaled, recommendations)} == {"old": False, shown: True}


def test_a_new_log_on_the_same_journal_copies_what_the_last_one_left(
    database_url: str, journaled: RecommendationLog, tmp_path: Path
) -> None:
    ids = {record(journaled) for _ in range(5)}
    restarted = RecommendationLog(make_engine(database_url), Journal(tmp_path / "journal"))
    assert restarted.drain_journal() == 5
    assert {row["id"] for row in recorded(restarted, recommendations)} == ids
    assert restarted.drain_journal() == 0
    restarted.engine.dispose()


@pytest.fixture
def replicas(database_url: str, tmp_path: Path) -> Iterator[tuple[RecommendationLog, RecommendationLog]]:
    """Two replicas on one database: a journal each, one signing key."""
    ids = RecommendationIds("the key every replica shares, long enough")
    pair = tuple(
        RecommendationLog(make_engine(database_url), Journal(tmp_path / f"journal-{name}"), ids) for name in "ab"
    )
    pair[0].create_tables()
    yield pair
    for replica in pair:
        replica.engine.dispose()


def test_a_score_at_one_replica_waits_for_another_replicas_copy(
    replicas: tuple[RecommendationLog, RecommendationLog],
) -> None:
    answering, scoring = replicas
    recommendation_id = record(answering)
    copier = threading.Timer(0.3, answering.drain_journal)  # its mule, a moment later
    copier.start()
    scoring.record_score(recommendation_id=recommendation_id, movie=TITLES[0], score=4.0)
    copier.join()
    assert [row["recommendation_id"] for row in recorded(scoring, scores)] == [recommendation_id]


@pytest.mark.parametrize(
    "made_up",
    [
        "f" * 32,  # not signed with the replicas' key
        RecommendationIds("another service's key, long enough as well").new(),
    ],
)
def test_a_made_up_id_is_refused_at_once_without_waiting(
    replicas: tuple[RecommendationLog, RecommendationLog], made_up: str
) -> None:
    started = time.monotonic()
    with pytest.raises(ScoreRejected, match="no recommendation has this id"):
        replicas[1].record_score(recommendation_id=made_up, movie=TITLES[0], score=4.0)
    assert time.monotonic() - started < SCORE_WAIT_SECONDS / 2


def test_a_genuine_id_not_copied_yet_is_pending_after_a_wait_under_a_second(
    replicas: tuple[RecommendationLog, RecommendationLog],
) -> None:
    late = record(replicas[0])  # journaled by a replica whose copy has not come yet
    started = time.monotonic()
    with pytest.raises(RecommendationPending):
        replicas[1].record_score(recommendation_id=late, movie=TITLES[0], score=4.0)
    assert SCORE_WAIT_SECONDS <= time.monotonic() - started < 1.0
    replicas[0].drain_journal()  # its copy comes: the same score is taken
    replicas[1].record_score(recommendation_id=late, movie=TITLES[0], score=4.0)
    assert [row["recommendation_id"] for row in recorded(replicas[1], scores)] == [late]


def test_a_genuine_id_whose_recommendation_cannot_arrive_any_more_is_refused(
    replicas: tuple[RecommendationLog, RecommendationLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = record(replicas[0])
    issued_at = replicas[1].ids.issued_at(lost)
    monkeypatch.setattr(time, "time", lambda: issued_at + PENDING_ID_SECONDS + 1)
    with pytest.raises(ScoreRejected, match="no recommendation has this id"):
        replicas[1].record_score(recommendation_id=lost, movie=TITLES[0], score=4.0)


def test_a_genuine_id_with_a_movie_it_did_not_recommend_is_refused(
    replicas: tuple[RecommendationLog, RecommendationLog],
) -> None:
    recommendation_id = record(replicas[0])
    replicas[0].drain_journal()
    with pytest.raises(ScoreRejected, match="movie: not one of the titles"):
        replicas[1].record_score(recommendation_id=recommendation_id, movie="Toy Story (1995)", score=4.0)


def test_an_id_tells_when_it_was_issued_and_only_to_its_key() -> None:
    ids = RecommendationIds("the key every replica shares, long enough")
    before = time.time()
    issued = ids.new()
    assert len(issued) == 32 and set(issued) <= set("0123456789abcdef")
    assert before - 0.001 <= ids.issued_at(issued) <= time.time()
    assert RecommendationIds("another service's key, long enough as well").issued_at(issued) is None
    assert ids.issued_at(issued[:-1] + ("0" if issued[-1] != "0" else "1")) is None
    assert ids.issued_at("short") is None
