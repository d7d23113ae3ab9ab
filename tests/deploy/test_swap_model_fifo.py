"""How deploy/swap-model finds uwsgi's master FIFO when uwsgi's open files are hidden from it (root in a container,
without CAP_SYS_PTRACE): the one live run-stack FIFO of uwsgi's user, never one a killed stack left unread."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.scripts import load_script

# run-stack's runtime layout; not in the image's build, where init is the test's own user.
pytestmark = pytest.mark.stack
swap_model = load_script("deploy/swap-model", "swap_model")
DENIED = PermissionError(errno.EACCES, "Permission denied")


def runtime_dir(tmp_path: Path, name: str) -> Path:
    """A run-stack runtime directory with its master FIFO, as uwsgi makes it; the FIFO's path."""
    (tmp_path / f"run-stack.{name}").mkdir()
    fifo = tmp_path / f"run-stack.{name}" / swap_model.MASTER_FIFO_NAME
    os.mkfifo(fifo)
    return fifo


@contextmanager
def read(fifo: Path) -> Iterator[None]:
    """The FIFO held open for reading, as a running uwsgi master holds its own."""
    descriptor = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        yield
    finally:
        os.close(descriptor)


@pytest.fixture
def temporary_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_the_live_fifo_of_uwsgis_user_is_taken_and_one_a_killed_stack_left_is_not(temporary_dir: Path) -> None:
    left_behind = runtime_dir(temporary_dir, "killed")
    live = runtime_dir(temporary_dir, "live")
    with read(live):
        assert swap_model.fifo_owned_alike(os.getpid(), DENIED) == live
    with read(left_behind):
        assert swap_model.fifo_owned_alike(os.getpid(), DENIED) == left_behind


def test_no_live_fifo_or_two_of_them_stop_the_swap_saying_what_to_do(temporary_dir: Path) -> None:
    first, second = runtime_dir(temporary_dir, "first"), runtime_dir(temporary_dir, "second")
    with pytest.raises(SystemExit, match="0 live run-stack master FIFOs .* run swap-model as that user"):
        swap_model.fifo_owned_alike(os.getpid(), DENIED)
    with read(first), read(second), pytest.raises(SystemExit, match="2 live run-stack master FIFOs"):
        swap_model.fifo_owned_alike(os.getpid(), DENIED)


def test_a_fifo_of_another_user_is_not_taken(temporary_dir: Path) -> None:
    fifo = runtime_dir(temporary_dir, "other")
    if os.getuid() == 0:  # the FIFO becomes another user's
        os.chown(fifo, 1, -1)
        master = os.getpid()
    else:  # the master is another user's: init, root's
        master = 1
    with read(fifo), pytest.raises(SystemExit, match="0 live"):
        swap_model.fifo_owned_alike(master, DENIED)
