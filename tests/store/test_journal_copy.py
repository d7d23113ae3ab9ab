"""The copy of a journal into the database takes any line and any fault: a torn line, a line the database
refuses, a write cut short, an outage of any length. Nothing read is lost: what cannot be copied is set aside."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app.store import journal as journal_module
from app.store.journal import BATCH_BYTES, BATCH_LINES, QUARANTINE_NAME, Journal, JournalUnwritable
from app.store.recommendation_log import RecommendationLog, make_engine, recommendations
from tests.relay import Relay, relayed_url

TITLES = ["Heat (1995)", "Misérables, Les (1995)"]
FRAGMENT = b'{"id":"torn'


def record(log: RecommendationLog, age: int = 30) -> str:
    return log.record_recommendation(
        age=age, gender="F", occupation="writer", max_recs=2, titles=TITLES, model_version="a" * 64
    )


def stored_ids(log: RecommendationLog) -> set[str]:
    with log.engine.connect() as connection:
        return set(connection.execute(select(recommendations.c.id)).scalars())


def set_aside(log: RecommendationLog) -> list[dict]:
    quarantine = log.journal.directory / QUARANTINE_NAME
    return [json.loads(line) for line in quarantine.read_text().splitlines()] if quarantine.exists() else []


def journal_file(log: RecommendationLog) -> Path:
    (path,) = log.journal.directory.glob("*.jsonl")
    return path


def append_raw(path: Path, data: bytes) -> None:
    """Another process's bytes at the end of a journal file (opened apart from its writer's descriptor)."""
    with path.open("ab") as stream:
        stream.write(data)


def test_a_fragment_costs_only_the_line_glued_to_it_which_is_set_aside_with_one_error(
    journaled: RecommendationLog, caplog: pytest.LogCaptureFixture
) -> None:
    before = record(journaled)
    path = journal_file(journaled)
    torn_at = path.stat().st_size
    append_raw(path, FRAGMENT)
    glued = record(journaled)
    after = [record(journaled) for _ in range(3)]
    with caplog.at_level(logging.ERROR):
        assert journaled.drain_journal() == 4
    assert stored_ids(journaled) == {before, *after}
    (entry,) = set_aside(journaled)
    assert (entry["file"], entry["offset"]) == (path.name, torn_at)
    line = entry["line"].encode("utf-8", "surrogateescape")
    assert line.startswith(FRAGMENT) and glued in line.decode()
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"{path.name} offset {torn_at}" in error.getMessage()
    assert journaled.drain_journal() == 0 and len(set_aside(journaled)) == 1


@pytest.mark.parametrize(
    "line",
    [b"\xff\xfe not UTF-8", b"[1, 2]", b'{"id": "x"}', b"", b'{"id": "y", "created_at": 5}'],
    ids=["bytes", "a list", "fields missing", "empty", "a number for a time"],
)
def test_a_line_that_is_not_a_recommendation_is_set_aside_exactly_and_the_next_is_copied(
    journaled: RecommendationLog, line: bytes
) -> None:
    record(journaled)
    path = journal_file(journaled)
    torn_at = path.stat().st_size
    append_raw(path, line + b"\n")
    after = record(journaled)
    assert journaled.drain_journal() == 2
    assert after in stored_ids(journaled)
    (entry,) = set_aside(journaled)
    assert entry["offset"] == torn_at and entry["line"].encode("utf-8", "surrogateescape") == line


def test_a_line_the_database_refuses_is_set_aside_and_its_batch_is_copied(journaled: RecommendationLog) -> None:
    first = record(journaled)
    path = journal_file(journaled)
    refused = json.loads(path.read_text().splitlines()[0])
    append_raw(path, json.dumps({**refused, "id": "f" * 32, "age": None}).encode() + b"\n")  # NOT NULL
    last = record(journaled)
    assert journaled.drain_journal() == 2
    assert stored_ids(journaled) == {first, last}
    (entry,) = set_aside(journaled)
    assert entry["reason"].startswith("refused by the database") and "f" * 32 in entry["line"]


def test_a_copy_reads_bounded_batches_and_sets_an_overlong_line_aside_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "1-1.jsonl"
    overlong = b"x" * (BATCH_BYTES + 10)
    path.write_bytes(b"{}\n" * (BATCH_LINES + 5) + overlong + b"\n{}\n")
    lines, end = Journal.read_batch(path, 0)
    assert (len(lines), end) == (BATCH_LINES, 3 * BATCH_LINES)
    lines, end = Journal.read_batch(path, end)
    assert len(lines) == 5
    pieces = []
    while (batch := Journal.read_batch(path, end))[0]:
        pieces += batch[0]
        end = batch[1]
    assert [len(piece) for _, piece in pieces] == [BATCH_BYTES, 10, 2]
    assert end == path.stat().st_size


def test_a_short_write_is_taken_back_so_that_the_next_line_is_whole(
    journaled: RecommendationLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = record(journaled)
    real_write = os.write
    monkeypatch.setattr(journal_module.os, "write", lambda fd, data: real_write(fd, data[: len(data) // 2]))
    with pytest.raises(JournalUnwritable, match="short write"):
        record(journaled)
    monkeypatch.setattr(journal_module.os, "write", real_write)
    after = record(journaled)
    assert journaled.drain_journal() == 2
    assert stored_ids(journaled) == {kept, after}
    assert set_aside(journaled) == []


WRITER_LEAVING_A_FRAGMENT = """
import os, sys
from pathlib import Path
from app.store.journal import Journal
journal = Journal(Path(sys.argv[1]))
journal.append({"id": "whole"})
os.write(journal._descriptor, b'{"id":"cut sho')
print("written", flush=True)
os.kill(os.getpid(), 9)
"""


def test_a_fragment_a_killed_writer_left_at_the_end_is_set_aside_and_its_file_removed(
    journaled: RecommendationLog,
) -> None:
    writer = subprocess.run([sys.executable, "-c", WRITER_LEAVING_A_FRAGMENT, str(journaled.journal.directory)])
    assert writer.returncode == -signal.SIGKILL
    journaled.drain_journal()  # the whole line is set aside too: it is no recommendation
    entries = set_aside(journaled)
    assert [entry["line"] for entry in entries] == ['{"id":"whole"}', '{"id":"cut sho']
    assert list(journaled.journal.directory.glob("*.jsonl")) == []


def test_a_fragment_is_left_alone_while_its_writer_lives(journaled: RecommendationLog) -> None:
    record(journaled)
    append_raw(journal_file(journaled), FRAGMENT)
    journaled.drain_journal()
    assert set_aside(journaled) == [] and journal_file(journaled).exists()


@pytest.mark.service
def test_a_bad_line_met_during_an_outage_is_set_aside_once_the_database_is_back(
    empty_postgres: str, relay: Relay, tmp_path: Path
) -> None:
    store = RecommendationLog(make_engine(relayed_url(empty_postgres, relay)), Journal(tmp_path / "journal"))
    store.create_tables()
    first = record(store)
    append_raw(journal_file(store), b"not JSON\n")
    last = record(store)
    relay.cut()
    for _ in range(3):  # the mule tries again every second
        with pytest.raises(OperationalError):
            store.drain_journal()
    assert set_aside(store) == []
    relay.open()
    assert store.drain_journal() == 2
    assert stored_ids(store) == {first, last}
    assert [entry["line"] for entry in set_aside(store)] == ["not JSON"]
    store.engine.dispose()
