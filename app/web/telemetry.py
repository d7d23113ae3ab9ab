"""Prometheus metrics at /metrics, summed over every uwsgi worker (prometheus_client's multiprocess mode)."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.web.auth import bearer_matches
from app.web.errors import APIError
from app.web.logs import elapsed_seconds

bp = Blueprint("telemetry", __name__)

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time spent answering, by route",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
# By experiment arm ("control", "candidate"; "none" outside an experiment).
RECOMMENDATIONS = Counter("recommendations_served_total", "Recommendations answered (and recorded)", ["arm"])
SCORES = Counter("scores_recorded_total", "Scores recorded", ["arm"])
# An info metric as a gauge: multiprocess mode has no Info; the value is 1 for the version being served.
MODEL = Gauge("model_info", "The model being served", ["version"], multiprocess_mode="max")


def init_app(app: Flask, *, multiprocess_dir: str | None, token: str | None) -> None:
    app.extensions["metrics_multiprocess_dir"] = multiprocess_dir
    app.extensions["metrics_token"] = token

    @app.after_request
    def count(response: Response) -> Response:
        # The rule, not the path: unknown paths all count as one route and cannot blow up the label set.
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        LATENCY.labels(route).observe(elapsed_seconds())
        return response


def record_model(version: str) -> None:
    MODEL.labels(version).set(1)


@bp.get("/metrics")
def metrics() -> Response:
    token = current_app.extensions["metrics_token"]
    if token and not bearer_matches(token):
        raise APIError("/metrics needs the metrics token: send 'Authorization: Bearer <METRICS_TOKEN>'", 401)
    directory = current_app.extensions["metrics_multiprocess_dir"]
    registry = REGISTRY
    if directory:  # several workers: add up what each wrote to its files
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
