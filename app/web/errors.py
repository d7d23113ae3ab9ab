"""One error shape for the whole API ({"message": "..."} with the right status), and the headers every answer has."""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

# What a 503 tells a client to wait before it asks again: a database back from a restart, or a
# recommendation that a mule copies into it, are usually there within a second or two.
RETRY_AFTER = {"Retry-After": "1"}


class APIError(Exception):
    """An error a view raises; the handler answers it as JSON."""

    status_code = 400

    def __init__(self, message: str, status_code: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        if status_code is not None:
            self.status_code = status_code


def error_response(message: str, status_code: int) -> tuple[Response, int]:
    return jsonify(message=message), status_code


def init_app(app: Flask) -> None:
    @app.after_request
    def protective_headers(response: Response) -> Response:
        # Browsers must take every answer for the type it says it is, and a JSON answer loads nothing,
        # runs nothing and is framed by nobody. A page sets a policy of its own.
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        return response

    @app.errorhandler(APIError)
    def handle_api_error(error: APIError) -> tuple[Response, int, dict[str, str]]:
        return *error_response(error.message, error.status_code), error.headers

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> Response:
        response = error.get_response()
        response.data = jsonify(message=error.description or error.name).get_data()
        response.content_type = "application/json"
        return response

    @app.errorhandler(OperationalError)
    def handle_database_error(error: OperationalError) -> tuple[Response, int, dict[str, str]]:
        current_app.logger.error("database unavailable: %s", str(error.orig or error).splitlines()[0])
        return *error_response("the database is unavailable; try again shortly", 503), RETRY_AFTER

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> tuple[Response, int]:
        current_app.logger.exception("unhandled error")
        return error_response("internal server error", 500)
