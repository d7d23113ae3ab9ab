"""deploy/run-stack under load while its journal meets the faults an operator meets: a fragment another process
appends to every journal file, and a full disk that cuts a worker's write short. Every acknowledged
recommendation reaches the database, but the one line glued to each fragment, which is set aside with one
ERROR line; no request fails for a fragment.

The full disk is real: the journal directory is a tmpfs of a few pages (mount(8), so the test runs as root,
as `make test` does), filled by a file of the test's own and freed again.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from app.model.recommender import MODEL_FILE_NAME
from app.store.journal import QUARANTINE_NAME
from tests.deploy.test_database_outage_stack import Recommending, stored_ids
from tests.deploy.test_run_stack import PASSWORD, kill_group, start_stack

pytestmark = [pytest.mark.stack, pytest.mark.service]

FRAGMENT = b'{"id":"torn'
LOAD_SECONDS = 3.0
# A tmpfs of this size holds each worker's journal file of a few pages and little more once the filler is in.
JOURNAL_FS_BYTES = 256 * 1024


def wait_for_the_copy(acknowledged: set[str], database_url: str, allowed_missing: int, seconds: float = 30) -> set:
    """The acknowledged ids still missing from the database once at most allowed_missing are, or time is up."""
    deadline = time.monotonic() + seconds
    while len(missing := acknowledged - stored_ids(database_url)) > allowed_missing and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1)  # a mule that would copy more has had its turn
    return acknowledged - stored_ids(database_url) if missing else missing


def set_aside(journal_dir: Path) -> list[dict]:
    quarantine = journal_dir / QUARANTINE_NAME
    return [json.loads(line) for line in quarantine.read_text().splitlines()] if quarantine.exists() else []


def set_aside_errors(work_dir: Path) -> list[str]:
    lines = (work_dir / "stack.log").read_text(errors="replace").splitlines()
    return [line for line in lines if " ERROR " in line and "journal line set aside" in line]


def test_a_fragment_in_every_journal_file_costs_only_the_lines_glued_to_it(
    synthetic_model_dir: Path, tmp_path: Path, empty_postgres: str
) -> None:
    url, stack = start_stack(synthetic_model_dir / MODEL_FILE_NAME, tmp_path, empty_postgres)
    journal_dir = tmp_path / "journal"
    try:
        token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5).json()
        with Recommending(url, {"Authorization": f"Bearer {token['access_token']}"}) as clients:
            time.sleep(LOAD_SECONDS)
            torn = sorted(journal_dir.glob("*.jsonl"))
            for path in torn:  # another process: its own descriptor, at the end of each file
                with path.open("ab") as stream:
                    stream.write(FRAGMENT)
            time.sleep(LOAD_SECONDS)
        acknowledged = clients.acknowledged()
        missing = wait_for_the_copy(acknowledged, empty_postgres, allowed_missing=len(torn))
        entries = set_aside(journal_dir)
        print(f"fragment drill: {len(clients.answers)} requests, {clients.failures()} failed, {len(torn)} files "
              f"torn, {len(entries)} lines set aside, {len(missing)} acknowledged not copied")  # fmt: skip
        assert len(acknowledged) > 50, "the load did not get going"
        assert clients.failures() == 0
        assert 1 <= len(entries) <= len(torn)
        assert all(entry["line"].startswith(FRAGMENT.decode()) for entry in entries)
        assert {entry["file"] for entry in entries} <= {path.name for path in torn}
        # Each acknowledged recommendation not in the database is the one glued to a fragment.
        assert missing == {entry["line"].removeprefix(FRAGMENT.decode())[7:39] for entry in entries} - {""}
        assert len(set_aside_errors(tmp_path)) == len(entries)
    finally:
        kill_group(stack)


def fill(directory: Path) -> Path:
    """A file that takes every free byte of the file system under directory."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError:  # ENOSPC: full
        pass
    finally:
        os.close(descriptor)
    return filler


@pytest.fixture
def small_journal_fs(tmp_path: Path):
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={JOURNAL_FS_BYTES}", "tmpfs", str(journal_dir)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (run as root, as make test does): {mounted.stderr.decode().strip()}")
    yield journal_dir
    subprocess.run(["umount", "--lazy", str(journal_dir)], check=True)


@pytest.mark.privileged
def test_a_full_disk_that_cuts_a_workers_write_short_loses_no_acknowledged_recommendation(
    synthetic_model_dir: Path, tmp_path: Path, empty_postgres: str, small_journal_fs: Path
) -> None:
    url, stack = start_stack(synthetic_model_dir / MODEL_FILE_NAME, tmp_path, empty_postgres)
    try:
        token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5).json()
        with Recommending(url, {"Authorization": f"Bearer {token['access_token']}"}) as clients:
            time.sleep(1)
            filler = fill(small_journal_fs)
            time.sleep(LOAD_SECONDS)
            filler.unlink()
            time.sleep(LOAD_SECONDS)
        acknowledged = clients.acknowledged()
        missing = wait_for_the_copy(acknowledged, empty_postgres, allowed_missing=0)
        log = (tmp_path / "stack.log").read_text(errors="replace")
        cut_short = log.count("short write to the journal")
        refused = [status for _, status, _ in clients.answers if status != 200]
        print(f"full-disk drill: {len(clients.answers)} requests, {len(refused)} answered 503 while full "
              f"({cut_short} writes cut short and taken back), {len(set_aside(small_journal_fs))} lines set aside, "
              f"{len(missing)} acknowledged not copied")  # fmt: skip
        assert len(acknowledged) > 50, "the load did not get going"
        assert cut_short >= 1, "no write was cut short: the drill showed nothing"
        assert set(refused) <= {503}
        assert missing == set()
        assert set_aside(small_journal_fs) == []
    finally:
        kill_group(stack)
