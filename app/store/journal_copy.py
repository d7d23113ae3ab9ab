"""The copy of a journal (app/store/journal.py) into the recommendations table: batch by batch, each batch and
its file's new offset in one transaction, so that a copy after an outage of any length holds one batch in memory
at a time. A line that is not a recommendation, or that the database refuses as data (not an outage), is set
aside in the journal's quarantine file; the lines after it are copied."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from app.store import experiment_sums
from app.store.journal import Journal, Line
from app.store.tables import journal_offsets, recommendations

# Lines journaled before reasons existed have no explain (none were shown); before client keys, no client;
# before experiments, no experiment; before warm start, no rated.
DEFAULTS = {"explain": False, "client": None, "experiment_id": None, "arm": None, "rated": None}
COLUMNS = frozenset(recommendations.columns.keys())
SetAside = tuple[Line, str]  # a line that cannot be copied, and why
NAMES = ", ".join(recommendations.columns.keys())
# On PostgreSQL a batch goes as one JSON array, which json_populate_recordset turns into rows: one statement and
# one parameter whatever the batch's size, compiled once, and it says which rows it took. psycopg's executemany
# sends a statement per row: the copy took 2.3 times the CPU (benchmarks/README.md, "The log at scale").
INSERT_FROM_JSON = text(
    f"INSERT INTO recommendations ({NAMES}) SELECT {NAMES} FROM json_populate_recordset(NULL::recommendations, "
    "CAST(:rows AS json)) ON CONFLICT (id) DO NOTHING RETURNING id"
)


class JournalCopy:
    def __init__(self, engine: Engine, journal: Journal, insert: Callable) -> None:
        self.engine = engine
        self.journal = journal
        self._insert = insert  # the dialect's insert, which has on_conflict_do_nothing

    def drain(self) -> int:
        """Copy the journal's new lines into the database; the number of recommendations copied."""
        copied = 0
        with self.journal.draining() as files:
            for path in files:
                copied += self._drain_file(path)
        return copied

    def _drain_file(self, path: Path) -> int:
        copied = 0
        offset = self._offset(path.name)
        while True:
            lines, end = self.journal.read_batch(path, offset)
            if not lines:
                break
            copied += self._copy_batch(path, lines, end)
            offset = end
        if (tail := self.journal.abandoned_tail(path, offset)) is not None:
            offset += len(tail[1])
            with self.engine.begin() as connection:
                self._save_offset(connection, path.name, offset)
                self.journal.set_aside(path, tail, "a fragment its writer left unfinished")
        self.journal.remove_if_finished(path, offset)
        return copied

    def _copy_batch(self, path: Path, lines: list[Line], end: int) -> int:
        rows: dict[Line, dict] = {}
        unreadable: list[SetAside] = []
        for line in lines:
            try:
                rows[line] = recommendation_row(line[1])
            except ValueError as error:
                unreadable.append((line, f"not a journaled recommendation: {error}"))
        with self.engine.begin() as connection:
            experiment_sums.take_write_lock(connection)
            inserted, refused = self._insert_rows(connection, rows)
            # `inserted`: the recommendations this transaction adds (a line copied before is not among them).
            self._save_offset(connection, path.name, end)
            # Once the database has taken the rest, just before the commit: an outage sets nothing aside twice.
            for line, reason in unreadable + refused:
                self.journal.set_aside(path, line, reason)
        return len(inserted)

    def _insert_rows(self, connection: Connection, rows: dict[Line, dict]) -> tuple[list[dict], list[SetAside]]:
        """Insert the rows at once, or, when the database refuses one as data, each on its own: the rows that
        were not there before, and the lines of those it refused."""
        if not rows:
            return [], []
        try:
            with connection.begin_nested():
                return self._insert_new(connection, list(rows.values())), []
        except StatementError as error:
            if not refused_as_data(error):
                raise
        inserted, refused = [], []
        for line, row in rows.items():
            try:
                with connection.begin_nested():
                    inserted += self._insert_new(connection, [row])
            except StatementError as error:
                if not refused_as_data(error):
                    raise
                refused.append((line, f"refused by the database: {str(error.orig or error)[:200]}"))
        return inserted, refused

    def _insert_new(self, connection: Connection, rows: list[dict]) -> list[dict]:
        """Insert the rows that are not there yet (copied before), count them in the experiment's sums, and
        return them. No other process inserts journaled recommendations meanwhile (the drain lock)."""
        unique = list({row["id"]: row for row in rows}.values())
        if connection.dialect.name == "postgresql":
            batch = json.dumps(unique, default=datetime.isoformat)
            inserted = set(connection.execute(INSERT_FROM_JSON, {"rows": batch}).scalars())
            new = [row for row in unique if row["id"] in inserted]
        else:
            ids = [row["id"] for row in unique]
            there = set(connection.execute(select(recommendations.c.id).where(recommendations.c.id.in_(ids))).scalars())
            new = [row for row in unique if row["id"] not in there]
            if new:
                connection.execute(self._insert(recommendations).on_conflict_do_nothing(), new)
        experiment_sums.add_recommendations(connection, new)  # in this savepoint: a refused row counts nothing
        return new

    def _offset(self, file: str) -> int:
        with self.engine.connect() as connection:
            offset = connection.execute(
                select(journal_offsets.c.offset).where(journal_offsets.c.file == file)
            ).scalar_one_or_none()
        return offset or 0

    def _save_offset(self, connection: Connection, file: str, offset: int) -> None:
        position = self._insert(journal_offsets).values(file=file, offset=offset)
        connection.execute(
            position.on_conflict_do_update(index_elements=[journal_offsets.c.file], set_={"offset": offset})
        )


def recommendation_row(line: bytes) -> dict:
    """A journal line as a row of the recommendations table; ValueError for anything else."""
    record = json.loads(line)  # JSONDecodeError and UnicodeDecodeError are ValueErrors
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    row = {**DEFAULTS, **record}
    if row.keys() != COLUMNS:
        raise ValueError(f"fields {sorted(row.keys() ^ COLUMNS)} missing or unknown")
    if not isinstance(row["created_at"], str):
        raise ValueError("created_at is not a string")
    return {**row, "created_at": datetime.fromisoformat(row["created_at"])}


def refused_as_data(error: StatementError) -> bool:
    """Whether the database (or the driver) refused what was sent, rather than could not be reached."""
    if isinstance(error, DBAPIError):
        return isinstance(error, DataError | IntegrityError) and not error.connection_invalidated
    return True  # the statement was not sent: a value the driver cannot encode
