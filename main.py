"""The service: uwsgi imports app from here (module=main, callable=app); run it for development.

ML_MODEL_PATH=model/model.pkl SESSION_PASSWORD=test python ./main.py --port 5000 --debug
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from werkzeug.serving import WSGIRequestHandler

from app import create_app
from app.config import ConfigError

T = TypeVar("T")
# A uwsgi worker runs this much nicer than the mule that copies its journal into the database. Under a load
# that saturates the CPUs, workers at the default priority left the mule too small a share: the copy fell
# seconds behind (p99 14.7 s), and a score for a fresh recommendation waits for that copy. The workers'
# throughput stayed the same (benchmarks/README.md, "The log at scale"). A niceness ranks a process only
# among those of its scheduling group (its container's cgroup, or its session under autogroup): here, uwsgi's.
WORKER_NICENESS = 10


def or_exit(start: Callable[[], T]) -> T:
    """start(), or exit with the one line that says what to fix."""
    try:
        return start()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def yield_to_the_mule() -> None:
    """In a uwsgi worker, lower its priority: not in the mule, which imports this module too, nor in
    deploy/preflight.py, which `uwsgi --pyrun` runs as worker 1 before the stack starts."""
    try:
        import uwsgi
    except ImportError:  # the development server, or a test
        return
    if uwsgi.worker_id() > 0 and "pyrun" not in uwsgi.opt:
        os.nice(WORKER_NICENESS)


yield_to_the_mule()
app = or_exit(create_app)
# Everything loaded so far (the model above all) moves out of the garbage collector's sight: its full
# passes would otherwise walk every object of the model, and, in a forked process, write to (and so unshare)
# the pages that hold them.
gc.freeze()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the development server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--debug", action="store_true", help="reload on changes, show debug logs")
    args = parser.parse_args(argv)
    # No server or Python version in the development server's answers either.
    WSGIRequestHandler.server_version = "recommender"
    WSGIRequestHandler.sys_version = ""
    app.run(host=args.host, port=args.port, debug=args.debug)


if __name__ == "__main__":
    main()
