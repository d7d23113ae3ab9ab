"""A per-process append-only journal of recommendations, drained into the database off the request path.

Each uwsgi worker appends one JSON line per answered recommendation to a file of
its own with a single write(2) before it answers: once that returns, the line is
in the kernel and survives the worker being killed (not a power loss: there is
no fsync). A drainer (the uwsgi mule, or whoever needs a row now) copies new lines
into the database and records how far it read, in the same transaction.
"""

from __future__ import annotations

import fcntl
import json
import os
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
            name = f"{os.getpid()}-{time.time_ns()}{SUFFIX}"
            self._descriptor = os.open(self.directory / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._owner_pid = os.getpid()
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        if os.write(self._descriptor, line) != len(line):
            raise OSError(f"short write to the journal in {self.directory}: is the disk full?")

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
        """Delete a file that is read to its end and whose writer has exited."""
        writer = int(path.name.split("-", 1)[0])
        if writer == os.getpid() or path.stat().st_size != offset:
            return
        try:
            os.kill(writer, 0)
        except ProcessLookupError:
            path.unlink()
        except PermissionError:  # another user's live process holds that pid
            pass
