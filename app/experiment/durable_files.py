"""Files that survive a power cut: each is written whole, fsynced, then published by one rename, and its directory
fsynced after, so that a reader finds the old file or the new one, never a torn one (unless the disk lies)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def replace_file(path: Path, content: bytes) -> None:
    """Publish content as path, by one rename of a file already on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as staging:
        staging.write(content)
        staging.flush()
        os.fsync(staging.fileno())
    os.replace(staging.name, path)
    sync_directory(path.parent)


def write_directory(parent: Path, name: str, files: dict[str, bytes]) -> None:
    """Publish files as the directory parent/name, by one rename of a directory already on disk; a directory
    already there under that name (a torn one) is renamed aside first and removed after."""
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=".incoming-"))
    # mkdtemp's 0700 would keep out workers that run as another user than the mule.
    staging.chmod(0o755)
    for file_name, content in files.items():
        with (staging / file_name).open("wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
    sync_directory(staging)
    final = parent / name
    if final.exists():
        aside = Path(tempfile.mkdtemp(dir=parent, prefix=".torn-"))
        with contextlib.suppress(FileNotFoundError):  # another writer, sharing the directory, moved it first
            final.rename(aside / name)
    try:
        staging.rename(final)
    except OSError:  # another writer, sharing the directory, put a whole one there first
        shutil.rmtree(staging)
    sync_directory(parent)
    for leftover in parent.glob(".torn-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
