"""A per-process append-only journal of recommendations, drained into the database off the request path.

Each uwsgi worker appends one JSON line per answered recommendation to a file of
its own with a single write(2) before it answers: once that returns, the line is
in the kernel and survives the worker being killed (not a power loss: there is
no fsync). A drainer (the uwsgi mule of any process that shares the directory, or
deploy/preflight.py before a stack serves) copies new lines into the database and
records how far it read, in the same transaction. Requests never drain: the drain
lock is held across database I/O, which an outage can make long.

A writer holds a shared lock on its file for as long as it lives, and the kernel
drops it however the writer ends: a drainer deletes a file only once it is copied
and unlocked. That holds across containers sharing the directory (the api tasks of a
Swarm node, or compose's replicas, share one), where process ids say nothing: a
killed task's lines are copied by the others' mules at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SUFFIX = ".jsonl"
LOCK_NAME = ".drain.lock"


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._descriptor: int | None = None
        self._owner_pid: int | None = None

    def append(self, record: dict) -> None:
        """Write one record durably (against a crash of this process) before returning."""
        if self._owner_pid != os.getpid():  # a forked worker writes a file of its own
            if self._descriptor is not None:  # the parent's, which must not look alive for as long as this one
                os.close(self._descriptor)
            self._descriptor = self._create_own_file()
            self._owner_pid = os.getpid()
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        if os.write(self._descriptor, line) != len(line):
            raise OSError(f"short write to the journal in {self.directory}: is the disk full?")

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
    def read_from(path: Path, offset: int) -> tuple[list[dict], int]:
        """The complete lines after offset, and the offset after the last of them."""
        with path.open("rb") as stream:
            stream.seek(offset)
            data = stream.read()
        complete = data[: data.rfind(b"\n") + 1]
        return [json.loads(line) for line in complete.splitlines()], offset + len(complete)

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
