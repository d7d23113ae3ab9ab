"""The service: uwsgi imports app from here (module=main, callable=app); run it for development.

ML_MODEL_PATH=model/model.pkl SESSION_PASSWORD=test python ./main.py --port 5000 --debug
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable
from typing import TypeVar

from werkzeug.serving import WSGIRequestHandler

from app import create_app
from app.config import ConfigError
from app.worker_priority import yield_to_the_mule

T = TypeVar("T")


def or_exit(start: Callable[[], T]) -> T:
    """start(), or exit with the one line that says what to fix."""
    try:
        return start()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


yield_to_the_mule()  # before the app starts its threads, which inherit it
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
