"""GET /ui/: the web page (static HTML, CSS and JavaScript from app/web/static/ui, no build step)."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory

bp = Blueprint("ui", __name__, url_prefix="/ui", static_folder="../static/ui", static_url_path="")

# The page runs only its own script and style, talks only to this service, and is framed by nobody.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@bp.get("/")
def page() -> Response:
    response = send_from_directory(bp.static_folder, "index.html")
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response
