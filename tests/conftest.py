"""Shared fixtures: a small synthetic ml-100k directory, the real one, and models trained on each."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, make_url, text

from app.config import Settings, ml100k_dir
from app.model.data import GENRES, OCCUPATIONS, ensure_dataset
from app.model.recommender import MODEL_FILE_NAME
from app.store.journal import Journal
from app.store.recommendation_log import RecommendationLog, make_engine, metadata, sqlite_url
from app.training.train import train
from tests.relay import Relay

# Enough users that the held-out ones (34) show, through their noise, what the accuracy gate's bootstrap must see:
# the model finds the gender signal (against popularity) and, given five of a person's scores, their hidden taste
# (against the cold model).
SYNTHETIC_USERS = 168
SYNTHETIC_MOVIES = 30
DUPLICATE_MOVIE_ID, ORIGINAL_MOVIE_ID = 30, 5
ACCENTED_TITLE = "Misérables, Les (1995)"
AGES = (15, 22, 30, 40, 47, 52, 60)
RATINGS_PER_USER = 16

# The session password and signing key of the in-process service (the settings fixture).
PASSWORD = "correct horse battery staple"
JWT_SECRET = "a-test-signing-key-that-is-long-enough-for-hs256"


def write_synthetic_ml100k(directory: Path, *, seed: int = 0) -> Path:
    """An ml-100k-format directory: users of every occupation, a duplicated title, a Latin-1 title."""
    rng = np.random.RandomState(seed)
    directory.mkdir(parents=True, exist_ok=True)
    users = [
        f"{user}|{AGES[user % len(AGES)]}|{'MF'[user % 2]}|{OCCUPATIONS[user % len(OCCUPATIONS)]}|0000{user % 10}"
        for user in range(1, SYNTHETIC_USERS + 1)
    ]
    (directory / "u.user").write_text("\n".join(users) + "\n", encoding="latin-1")
    movies = []
    for movie in range(1, SYNTHETIC_MOVIES + 1):
        title = {7: ACCENTED_TITLE, DUPLICATE_MOVIE_ID: f"Movie {ORIGINAL_MOVIE_ID} (1990)"}.get(
            movie, f"Movie {movie} (1990)"
        )
        genres = "|".join(str(int(rng.rand() < 0.2)) for _ in GENRES)
        movies.append(f"{movie}|{title}|01-Jan-1990||http://example.invalid/{movie}|{genres}")
    (directory / "u.item").write_text("\n".join(movies) + "\n", encoding="latin-1")
    ratings = []
    for user in range(1, SYNTHETIC_USERS + 1):
        for movie in rng.choice(np.arange(1, SYNTHETIC_MOVIES), size=RATINGS_PER_USER, replace=False):
            # Men (even user ids) like the even-numbered movies, women the odd ones: a signal to find.
            # Half of each gender likes those of the first half of the catalogue only, the rest those of the
            # second: a taste no demographic shows, which only the person's own scores reveal (warm start).
            liked = (movie % 2 == 0) == (user % 2 == 0) and (movie <= SYNTHETIC_MOVIES // 2) == (user // 2 % 2 == 0)
            rating = rng.randint(3, 6) if liked else rng.randint(1, 4)
            ratings.append(f"{user}\t{movie}\t{rating}\t{880000000 + len(ratings)}")
    # User 1 rated both copies of the duplicated title: the later rating (2) must win.
    ratings.append(f"1\t{ORIGINAL_MOVIE_ID}\t5\t870000000")
    ratings.append(f"1\t{DUPLICATE_MOVIE_ID}\t2\t890000000")
    (directory / "u.data").write_text("\n".join(ratings) + "\n")
    return directory


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_ml100k(tmp_path_factory.mktemp("synthetic") / "ml-100k")


@pytest.fixture(scope="session")
def synthetic_model_dir(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("synthetic-model")
    train(synthetic_data_dir, out_dir, seed=1)
    return out_dir


@pytest.fixture(scope="session")
def synthetic_candidate_dir(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another model of the same data (another seed): a candidate beside synthetic_model_dir's."""
    out_dir = tmp_path_factory.mktemp("synthetic-candidate")
    train(synthetic_data_dir, out_dir, seed=2)
    return out_dir


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real ml-100k: ML100K_DIR, else data/ml-100k (downloaded when absent)."""
    return ensure_dataset(ml100k_dir())


@pytest.fixture(scope="session")
def real_model_dir(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("real-model")
    train(real_data_dir, out_dir, seed=1)
    return out_dir


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a fresh directory: (base URL, directory)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
    thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database on the local server (TEST_POSTGRES_URL), dropped afterwards."""
    server = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def empty_postgres(postgres_url: str) -> Iterator[str]:
    """The test database, emptied of the service's tables after the test."""
    yield postgres_url
    engine = create_engine(postgres_url)
    metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def settings(synthetic_model_dir: Path, tmp_path: Path) -> Settings:
    """The service's settings for in-process tests: the synthetic model, a SQLite database of the test's own."""
    return Settings(
        model_path=synthetic_model_dir / MODEL_FILE_NAME,
        session_password=PASSWORD,
        jwt_secret_key=JWT_SECRET,
        database_url=sqlite_url(tmp_path / "recommendations.sqlite3"),
    )


@pytest.fixture
def relay(empty_postgres: str) -> Iterator[Relay]:
    """A relay in front of the test database's server (tests/relay.py): relayed_url(empty_postgres, relay)."""
    url = make_url(empty_postgres)
    relay = Relay((url.host, url.port or 5432))
    relay.open()
    yield relay
    relay.cut()


@pytest.fixture
def log(database_url: str) -> Iterator[RecommendationLog]:
    """An empty recommendation log on each kind of database (database_url), its tables made."""
    store = RecommendationLog(make_engine(database_url))
    store.create_tables()
    yield store
    store.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind the service supports."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "recommendations.sqlite3")
    return request.getfixturevalue("empty_postgres")


@pytest.fixture(scope="session")
def journald() -> None:
    """A running systemd-journald (tests/start-services starts one, as `make test` does)."""
    if subprocess.run(["pgrep", "-x", "systemd-journal"], capture_output=True).returncode != 0:
        pytest.fail("systemd-journald is not running: run `make test` as root (tests/start-services starts it)")


@pytest.fixture
def journaled(database_url: str, tmp_path: Path) -> Iterator[RecommendationLog]:
    """The log on each kind of database, with a journal of the test's own."""
    store = RecommendationLog(make_engine(database_url), Journal(tmp_path / "journal"))
    store.create_tables()
    yield store
    store.engine.dispose()
