from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.store.journal import Journal


def test_each_process_appends_whole_lines_to_a_file_of_its_own(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append({"id": "a", "title": "Misérables, Les (1995)"})
    journal.append({"id": "b"})
    (path,) = tmp_path.glob("*.jsonl")
    assert path.name.startswith(f"{os.getpid()}-")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]


def test_reading_stops_at_the_last_complete_line(tmp_path: Path) -> None:
    path = tmp_path / "1-1.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "ti')
    lines, end = Journal.read_batch(path, 0)
    assert lines == [(0, b'{"id": "a"}'), (12, b'{"id": "b"}')]
    assert end == len(b'{"id": "a"}\n{"id": "b"}\n')
    assert Journal.read_batch(path, end) == ([], end)


WRITER = """
import sys, time
from pathlib import Path
from app.store.journal import Journal
Journal(Path(sys.argv[1])).append({"id": "a"})
print("written", flush=True)
time.sleep(float(sys.argv[2]))
"""


def start_writer(directory: Path, lifetime: float) -> subprocess.Popen:
    """Another process (as a worker of another container would be) that writes one line, then lives a while."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), str(lifetime)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline() == "written\n"
    writer.stdout.close()
    return writer


def test_a_finished_file_is_kept_while_its_writer_lives_and_removed_once_it_is_killed(tmp_path: Path) -> None:
    writer = start_writer(tmp_path, lifetime=60)
    (finished,) = tmp_path.glob("*.jsonl")
    Journal.remove_if_finished(finished, finished.stat().st_size)
    assert finished.exists()
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    Journal.remove_if_finished(finished, finished.stat().st_size)
    assert not finished.exists()


def test_a_file_is_kept_while_its_lines_are_unread_whoever_wrote_it(tmp_path: Path) -> None:
    start_writer(tmp_path, lifetime=0).wait()
    (unread,) = tmp_path.glob("*.jsonl")
    Journal.remove_if_finished(unread, 0)
    assert unread.exists()
    journal = Journal(tmp_path / "mine")
    journal.append({"id": "a"})
    (mine,) = (tmp_path / "mine").glob("*.jsonl")
    Journal.remove_if_finished(mine, mine.stat().st_size)
    assert mine.exists()


def test_a_forked_writer_does_not_keep_its_parents_file_looking_alive(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append({"id": "parent"})
    (parents,) = tmp_path.glob("*.jsonl")
    child = os.fork()
    if child == 0:  # the child writes a file of its own, then waits to be killed
        journal.append({"id": "child"})
        time.sleep(60)
        os._exit(0)
    try:
        while len(list(tmp_path.glob("*.jsonl"))) < 2:
            time.sleep(0.01)
        os.close(journal._descriptor)  # the parent is done with its file; the child still lives
        Journal.remove_if_finished(parents, parents.stat().st_size)
        assert not parents.exists()
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
