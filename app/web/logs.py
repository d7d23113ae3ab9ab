"""The one logging setup: the level name in every line, a request id, one line per request."""

from __future__ import annotations

import logging
import sys
import time
import uuid

from flask import Flask, Response, current_app, g, has_request_context, request

LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
HANDLER_NAME = "app"
REQUEST_ID_HEADER = "X-Request-ID"


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure(level: str) -> None:
    """Log to stderr in LINE_FORMAT; calling it again only changes the level."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(handler.get_name() == HANDLER_NAME for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(logging.Formatter(LINE_FORMAT))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)


def init_app(app: Flask) -> None:
    access_log = logging.getLogger("app.requests")

    @app.before_request
    def start_timer() -> None:
        g.request_id = uuid.uuid4().hex[:16]
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        milliseconds = elapsed_seconds() * 1000
        # The model that answered a recommendation (an experiment's arm), else the one that serves as last followed.
        model = g.get("model_version") or current_app.extensions["arms"].serving().version
        model = model[:12]
        access_log.info(
            "%s %s %s %.1fms model %s", request.method, request.path, response.status_code, milliseconds, model
        )
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "-")
        return response


def elapsed_seconds() -> float:
    """Time since the current request began."""
    return time.perf_counter() - g.get("started", time.perf_counter())
