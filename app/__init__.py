"""Movie recommendations for new users, from MovieLens ml-100k.

The parts, each a package whose docstring says what it may import: model/ (the forest, features, reasons,
data, model files), training/ (offline: train, evaluate, feedback), store/ (the SQL log of recommendations
and scores), web/ (Flask). This file imports none of them at its top, since importing any part runs it first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from app.config import Settings
    from app.model.recommender import Recommender
    from app.store.recommendation_log import RecommendationLog

log = logging.getLogger(__name__)
DATABASE_FILE_NAME = "recommendations.sqlite3"


def create_app(test_config: Settings | None = None) -> Flask:
    """config -> logging -> recommendation log -> auth -> errors -> blueprints -> model.

    Raises ConfigError, with one line saying what to fix, when the service cannot start.
    The web side and the configuration are imported here, not at the top: the model side (python -m app.train,
    app.evaluate) lives in this package too and must not load Flask.
    """
    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    from app.config import MAX_BODY_BYTES, Settings
    from app.experiment.arms import Arms
    from app.experiment.candidate_files import signing_key
    from app.web import auth, errors, logs, telemetry
    from app.web.api import auth as auth_routes
    from app.web.api import health, openapi, recommend, ui

    settings = test_config or Settings.from_environ()
    logs.configure(settings.log_level)
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    app.config.update(SESSION_PASSWORD=settings.session_password, MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    if settings.jwt_secret_generated:
        log.warning("JWT_SECRET_KEY is not set: tokens are signed with a random key and end with this process")
    app.extensions["recommendation_log"] = _recommendation_log(settings, Path(app.instance_path))

    auth.init_app(app, settings)
    errors.init_app(app)
    logs.init_app(app)
    telemetry.init_app(app, multiprocess_dir=settings.metrics_multiprocess_dir, token=settings.metrics_token)
    for blueprint in (health.bp, auth_routes.bp, recommend.bp, openapi.bp, telemetry.bp, ui.bp):
        app.register_blueprint(blueprint)
    if settings.trusted_proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_hops)

    recommender = _load_recommender(settings.model_path)
    # Candidates are signed with a key derived from the tokens' (candidate_files.py), which every replica shares.
    app.extensions["arms"] = Arms(recommender, settings.experiment_dir, signing_key(settings.jwt_secret_key))
    if settings.journal_dir is None:  # every recommendation goes straight to the database: it must work now
        prepare_database(app)
    telemetry.record_model(recommender.version)
    log.info("serving model %s from %s", recommender.version[:12], settings.model_path)
    return app


def _recommendation_log(settings: Settings, instance_path: Path) -> RecommendationLog:
    """The log in DATABASE_URL (default: SQLite in the instance folder); nothing is asked of the database yet."""
    from app.store.journal import Journal
    from app.store.recommendation_ids import RecommendationIds
    from app.store.recommendation_log import RecommendationLog, make_engine, sqlite_url

    instance_path.mkdir(parents=True, exist_ok=True)
    database_url = settings.database_url or sqlite_url(instance_path / DATABASE_FILE_NAME)
    journal = Journal(settings.journal_dir) if settings.journal_dir else None
    # Ids signed with the tokens' key, which every replica shares.
    return RecommendationLog(make_engine(database_url), journal, RecommendationIds(settings.jwt_secret_key))


def prepare_database(app: Flask) -> None:
    """Create the tables, prove the database takes writes, copy in what a crash left in the journal, and publish
    the experiment's state for the workers.

    Once per start of a server: create_app does it without a journal, deploy/preflight.py before a stack
    serves. A stack's workers never ask the database anything to start, so that uwsgi can replace them
    (recycled, swapped, killed) through an outage. Raises ConfigError when the database cannot be used.
    """
    from sqlalchemy.exc import OperationalError

    from app.config import ConfigError
    from app.experiment.publication import publish

    recommendation_log = app.extensions["recommendation_log"]
    directory = app.extensions["arms"].directory
    try:
        recommendation_log.create_tables()
        if recommendation_log.journal is not None:
            recommendation_log.drain_journal()
        if directory is not None:  # the workers start serving what the record says (a promoted candidate)
            publish(recommendation_log.engine, directory)
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0]
        raise ConfigError(f"DATABASE_URL: cannot use the database ({reason})") from error
    finally:
        # No connection is kept open across a fork: each uwsgi worker opens its own.
        recommendation_log.engine.dispose()


def _load_recommender(model_path: Path) -> Recommender:
    from app.config import ConfigError
    from app.model.recommender import ModelFileError, Recommender

    try:
        recommender = Recommender.load(model_path)
    except ModelFileError as error:
        raise ConfigError(f"ML_MODEL_PATH: {error}") from error
    if recommender.metadata is None:
        log.warning("%s comes without model.json: its SHA-256 cannot be checked", model_path)
    for mismatch in recommender.library_mismatches():
        log.warning("the model was made with other libraries: %s; retrain it with these", mismatch)
    return recommender
