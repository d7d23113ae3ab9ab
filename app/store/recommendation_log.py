"""The recommendation log and the scores people give, in SQL (SQLite or PostgreSQL)."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Engine,
    Table,
    bindparam,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateColumn

from app.store import experiment_sums
from app.store.journal import Journal
from app.store.journal_copy import JournalCopy
from app.store.recommendation_ids import RecommendationIds
from app.store.sums_from_log import sum_existing_log
from app.store.tables import journal_offsets, metadata, recommendations, scores

# SQLite: several uwsgi workers write at once (WAL, and wait for the lock rather than fail);
# synchronous=NORMAL keeps every commit through a process crash, not through a power loss.
SQLITE_PRAGMAS = ("journal_mode=WAL", "busy_timeout=10000", "synchronous=NORMAL", "foreign_keys=ON")
# A score for a genuine id whose recommendation is not in the database yet waits for a mule to copy it (each
# copies every 0.1 s) at most SCORE_WAIT_SECONDS, then is answered "pending" (503 with Retry-After), for as
# long as its recommendation may still arrive: from a journal a mule catches up on after an outage, or one a
# killed task left. Older ids whose recommendation is missing are refused. The margin covers clocks that differ.
SCORE_WAIT_SECONDS = 0.5
COPY_POLL_SECONDS = 0.02
PENDING_ID_SECONDS = 3600.0
CLOCK_MARGIN_SECONDS = 10.0
# What a score needs of its recommendation, built once (experiment_sums.py says why).
SCORED = select(recommendations.c.titles, recommendations.c.arm).where(
    recommendations.c.id == bindparam("recommendation_id")
)


class RecommendationPending(Exception):
    """A genuine id whose recommendation has not reached the database yet: the client should ask again shortly."""


class ScoreRejected(Exception):
    """A score that does not belong to a recommendation; field names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):  # SQLAlchemy would pick psycopg2; the project ships psycopg 3
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def set_pragmas(connection, _record) -> None:
            cursor = connection.cursor()
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

    return engine


class RecommendationLog:
    """Records each recommendation answered and each score given before the caller answers.

    Scores are committed to the database. Recommendations too, or, with a journal,
    appended to it and copied into the database by drain_journal. Replicas that share
    the database must share the key of their ids (the service's signing key).
    """

    def __init__(self, engine: Engine, journal: Journal | None = None, ids: RecommendationIds | None = None) -> None:
        self.engine = engine
        self.journal = journal
        self.ids = ids or RecommendationIds(secrets.token_urlsafe(32))
        self._insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert
        score = self._insert(scores)
        self._score_upsert = score.on_conflict_do_update(  # built once: a score is the busiest write
            index_elements=[scores.c.recommendation_id, scores.c.movie],
            set_={"score": score.excluded.score, "scored_at": score.excluded.scored_at},
        )

    def create_tables(self) -> None:
        """Create what is missing, and prove the database takes writes (a read-only file would not)."""
        sum_existing_log(self.engine)
        metadata.create_all(self.engine)
        self._add_new_columns()
        with self.engine.connect() as connection, connection.begin() as transaction:
            connection.execute(journal_offsets.insert().values(file=".write-check", offset=0))
            transaction.rollback()

    def _add_new_columns(self) -> None:
        """Columns added to a table after it was made by an earlier version (each has a default for old rows)."""
        for table in metadata.sorted_tables:
            existing = self._column_names(table)
            for column in table.columns:
                if column.name in existing:
                    continue
                try:
                    with self.engine.begin() as connection:
                        added = CreateColumn(column).compile(dialect=connection.dialect)
                        connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {added}"))
                except DBAPIError:  # another replica or worker starting at the same time may have added it
                    if column.name not in self._column_names(table):
                        raise

    def _column_names(self, table: Table) -> set[str]:
        return {column["name"] for column in inspect(self.engine).get_columns(table.name)}

    def ping(self) -> None:
        """Raises sqlalchemy's OperationalError when the database does not answer."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def record_recommendation(
        self,
        *,
        age: int,
        gender: str,
        occupation: str,
        max_recs: int,
        titles: list[str],
        model_version: str,
        explain: bool = False,
        client: str | None = None,
        recommendation_id: str | None = None,
        experiment_id: int | None = None,
        arm: str | None = None,
        rated: list[dict] | None = None,
    ) -> str:
        """Store one answer of /api/recommend and return its id (a new one unless given, from ids.new())."""
        row = {
            "id": recommendation_id or self.ids.new(),
            "created_at": datetime.now(UTC),
            "age": age,
            "gender": gender,
            "occupation": occupation,
            "max_recs": max_recs,
            "explain": explain,
            "client": client,
            "experiment_id": experiment_id,
            "arm": arm,
            "rated": rated,
            "titles": titles,
            "model_version": model_version,
        }
        if self.journal is not None:
            self.journal.append({**row, "created_at": row["created_at"].isoformat()})
        else:
            with self.engine.begin() as connection:
                experiment_sums.add_recommendations(connection, [row])
                connection.execute(recommendations.insert(), [row])
        return row["id"]

    def drain_journal(self) -> int:
        """Copy the journal's new lines into the database (app/store/journal_copy.py); the number copied."""
        return JournalCopy(self.engine, self.journal, self._insert).drain()

    def record_score(self, *, recommendation_id: str, movie: str, score: float) -> str | None:
        """Store a score for a movie of a recommendation; scoring it again keeps the latest. The recommendation's
        experiment arm (None outside an experiment).

        Raises ScoreRejected for an id never issued, or a movie not among its titles, and RecommendationPending
        when the id is genuine but its recommendation is still in a journal. It waits on no lock: a mule holds
        the journal's while it talks to the database.
        """
        deadline = time.monotonic() + SCORE_WAIT_SECONDS
        while True:
            try:
                return self._store_score(recommendation_id, movie, score)
            except ScoreRejected as rejected:
                if rejected.field != "id" or not self._may_still_arrive(recommendation_id):
                    raise
            if time.monotonic() >= deadline:
                raise RecommendationPending(f"recommendation {recommendation_id} is not recorded yet")
            time.sleep(COPY_POLL_SECONDS)

    def _may_still_arrive(self, recommendation_id: str) -> bool:
        """Whether a recommendation missing from the database may still be copied from a journal."""
        issued_at = self.ids.issued_at(recommendation_id)
        if self.journal is None or issued_at is None:  # without a journal, an answer was committed first
            return False
        return -CLOCK_MARGIN_SECONDS <= time.time() - issued_at <= PENDING_ID_SECONDS

    def _store_score(self, recommendation_id: str, movie: str, score: float) -> str | None:
        with self.engine.begin() as connection:
            experiment_sums.take_write_lock(connection)
            recommended = connection.execute(SCORED, {"recommendation_id": recommendation_id}).one_or_none()
            if recommended is None:
                raise ScoreRejected("id", "no recommendation has this id")
            if movie not in recommended.titles:
                raise ScoreRejected("movie", "not one of the titles recommended with this id")
            if recommended.arm is not None:
                experiment_sums.add_score(connection, recommendation_id=recommendation_id, movie=movie, score=score)
            connection.execute(
                self._score_upsert,
                {
                    "recommendation_id": recommendation_id,
                    "movie": movie,
                    "score": score,
                    "scored_at": datetime.now(UTC),
                },
            )
        return recommended.arm
