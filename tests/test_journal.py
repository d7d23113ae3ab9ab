from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.journal import Journal


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
    rows, end = Journal.read_from(path, 0)
    assert [row["id"] for row in rows] == ["a", "b"]
    assert end == len(b'{"id": "a"}\n{"id": "b"}\n')
    assert Journal.read_from(path, end) == ([], end)


def test_a_finished_file_of_an_exited_writer_is_removed(tmp_path: Path) -> None:
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    finished = tmp_path / f"{exited.stdout.strip()}-1.jsonl"
    finished.write_bytes(b'{"id": "a"}\n')
    Journal.remove_if_finished(finished, finished.stat().st_size)
    assert not finished.exists()


def test_a_file_is_kept_while_its_writer_lives_or_lines_are_unread(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append({"id": "a"})
    (mine,) = tmp_path.glob("*.jsonl")
    Journal.remove_if_finished(mine, mine.stat().st_size)
    assert mine.exists()
    unread = tmp_path / "999999999-1.jsonl"
    unread.write_bytes(b'{"id": "a"}\n{"id": "b"}\n')
    Journal.remove_if_finished(unread, 5)
    assert unread.exists()
