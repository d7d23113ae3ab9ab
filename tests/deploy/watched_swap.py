"""Runs deploy/swap-model (same arguments) and starts a worker at every step of it.

A worker start is Recommender.load(ML_MODEL_PATH), as uwsgi's workers start. One starts before each
change that swap-model makes beside ML_MODEL_PATH (a Python audit event: rename, link, removal, a file
opened for writing, ...) and one after the last, so every state the swap leaves behind is loaded. A
second one loads what ML_MODEL_PATH resolved to at the previous step: a worker that a change catches
between resolving the path and reading the files. Each start prints one JSON line, with the version
loaded or why the model was refused.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.model.recommender import ModelFileError, Recommender  # noqa: E402

CHANGES = {"os.rename", "os.symlink", "os.link", "os.remove", "os.rmdir", "os.mkdir", "os.truncate", "shutil.rmtree"}
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

served = Path(os.environ["ML_MODEL_PATH"])
watched_dir = os.path.abspath(served.parent) + os.sep
resolved_before: Path | None = None
starting = False


def start_worker(step: str, path: Path) -> None:
    try:
        outcome = {"version": Recommender.load(path).version}
    except ModelFileError as error:
        outcome = {"refused": str(error)}
    print(json.dumps({"step": step, **outcome}), flush=True)


def changes_served_dir(event: str, args: tuple) -> bool:
    if event == "open":
        file, _, flags = args
        paths = [file] if flags & WRITING else []
    elif event in CHANGES:
        paths = args
    else:
        return False
    return any(
        isinstance(path, str | bytes | os.PathLike) and os.path.abspath(os.fsdecode(path)).startswith(watched_dir)
        for path in paths
    )


def before_each_change(event: str, args: tuple) -> None:
    global resolved_before, starting
    if starting or not changes_served_dir(event, args):
        return
    starting = True  # the worker's own file opens are not the swap's
    try:
        if resolved_before is not None:
            start_worker(f"{event}, resolved before it", resolved_before)
        start_worker(event, served)
        resolved_before = served.resolve()
    finally:
        starting = False


sys.addaudithook(before_each_change)
sys.argv[0] = str(ROOT / "deploy" / "swap-model")
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    starting = True
    start_worker("end", served)
