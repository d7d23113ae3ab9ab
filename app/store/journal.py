"""A per-process append-only journal of recommendations, drained into the database off the request path.

Each uwsgi worker appends one JSON line per answered recommendation to a file of
its own with a single write(2) before it answers: once that returns, the line is
in the kernel and survives the worker being killed (not a power loss: there is
no fsync). A write cut short (a full disk) is taken back: the file is truncated
to where the line began, so that the writer's next line starts whole, and the
caller is told the line was not kept. A drainer (the uwsgi mule of any process
that shares the directory, or deploy/preflight.py before a stack serves) copies
new lines into the database in batches bounded in lines and bytes, and records
how far it read, in the same transaction. Requests never drain: the drain lock
is held across database I/O, which an outage can make long.

A line that cannot be read (a fragment another process left, and the line glued
to it) is set aside in QUARANTINE_NAME beside the journal, with its file and
offset, and never stops the copy of the lines after it. It is set aside just
before the offset that moves past it is committed: a crash in between sets it
aside twice, never not at all.

A writer holds a shared lock on its file for as long as it lives, and the kernel
drops it however the writer ends: a drainer deletes a file only once it is copied
and unlocked. That holds across containers sharing the directory (the api tasks of a
Swarm node, or compose's replicas, share one), where process ids say nothing: a
killed task's lines are copied by the others' mules at once.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SUFFIX = ".jsonl"
LOCK_NAME = ".drain.lock"
# Not *.jsonl: a drainer never takes it for a journal file.
QUARANTINE_NAME = "quarantine.ndjson"
# One batch of a copy: 1,000 lines (a transaction of about 1 MB on PostgreSQL) at most, and at most this many
# bytes read, whatever the lines hold. A longer line is set aside in pieces of this size.
BATCH_LINES = 1000
BATCH_BYTES = 1 << 20
log = logging.getLogger(__name__)

Line = tuple[int, bytes]  # a line's offset in its file, and its bytes without the newline


class JournalUnwritable(OSError):
    """A line could not be written whole (a full disk): it is not in the journal."""


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._descriptor: int | None = None
        self._owner_pid: int | None = None

    def append(self, record: dict) -> None:
        """Write one record durably (against a crash of this process) before returning, or raise
        JournalUnwritable with nothing of it left in the file."""
        if self._owner_pid != os.getpid():  # a forked worker writes a file of its own
            if self._descriptor is not None:  # the parent's, which must not look alive for as long as this one
                os.close(self._descriptor)
            self._descriptor = self._create_own_file()
            self._owner_pid = os.getpid()
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        try:
            written = os.write(self._descriptor, line)
        except OSError as error:  # nothing was written
            raise JournalUnwritable(f"cannot write to the journal in {self.directory}: {error}") from error
        if written != len(line):
            # O_APPEND: the file offset is just past the bytes this write put at the end.
            os.ftruncate(self._descriptor, os.lseek(self._descriptor, 0, os.SEEK_CUR) - written)
            raise JournalUnwritable(f"short write to the journal in {self.directory} (taken back): is the disk full?")

    def _create_own_file(self) -> int:
        """A new journal file, locked before drainers can see it under its journal name."""
        name = f"{os.getpid()}-{time.time_ns()}-{secrets.token_hex(4)}"
        unseen = self.directory / f".{name}.new"
        descriptor = os.open(unseen, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o640)
        fcntl.flock(descriptor, fcntl.LOCK_SH)
        os.rename(unseen, self.directory / f"{name}{SUFFIX}")
        return descriptor

    @contextmanager
    def draining(self) -> Iterator[list[Path]]:
        """The journal files, while this process holds the drain lock (one drainer at a time)."""
        with (self.directory / LOCK_NAME).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield sorted(self.directory.glob(f"*{SUFFIX}"))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def read_batch(path: Path, offset: int) -> tuple[list[Line], int]:
        """At most BATCH_LINES complete lines after offset, in at most BATCH_BYTES, and the offset after them.

        A line longer than BATCH_BYTES comes in pieces of that size, each unreadable on its own.
        """
        with path.open("rb") as stream:
            stream.seek(offset)
            data = stream.read(BATCH_BYTES)
        complete = data.rfind(b"\n") + 1 or (len(data) if len(data) == BATCH_BYTES else 0)
        lines: list[Line] = []
        start = 0
        while start < complete and len(lines) < BATCH_LINES:
            stop = data.find(b"\n", start, complete)
            stop = complete if stop == -1 else stop
            lines.append((offset + start, data[start:stop]))
            start = stop + 1
        return lines, offset + min(start, complete)

    @staticmethod
    def abandoned_tail(path: Path, offset: int) -> Line | None:
        """What follows offset in a file that no living writer holds and that does not end in a newline: a
        fragment no one will finish. None while its writer lives, or when offset is the end."""
        if path.stat().st_size == offset:
            return None
        with path.open("rb") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its writer lives and may still end the line
                return None
            probe.seek(offset)
            tail = probe.read(BATCH_BYTES)
        return (offset, tail) if tail and b"\n" not in tail else None

    def set_aside(self, path: Path, line: Line, reason: str) -> None:
        """Keep an unreadable line in the quarantine file, with one ERROR line naming its file and offset."""
        offset, data = line
        quarantine = self.directory / QUARANTINE_NAME
        # surrogateescape and ASCII escapes: any bytes, even a torn UTF-8 sequence, come back exactly.
        entry = {"file": path.name, "offset": offset, "reason": reason, "line": data.decode("utf-8", "surrogateescape")}
        with quarantine.open("a", encoding="ascii") as stream:
            stream.write(json.dumps(entry) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        log.error("journal line set aside in %s: %s offset %d (%s)", quarantine, path.name, offset, reason)

    @staticmethod
    def remove_if_finished(path: Path, offset: int) -> None:
        """Delete a file that is read to its end and that no living writer holds."""
        if path.stat().st_size != offset:
            return
        with path.open("rb") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its writer lives and may append
                return
            if path.stat().st_size == offset:
                path.unlink()
