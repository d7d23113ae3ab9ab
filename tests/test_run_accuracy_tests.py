from __future__ import annotations

import functools
import json
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

import app.training.train as training_module
from app.model.data import Dataset, load_dataset
from app.model.forest import RelevanceForest
from app.model.recommender import MODEL_FILE_NAME, Recommender
from app.store.recommendation_log import RecommendationLog, make_engine, sqlite_url
from app.training.gate import Verdict
from app.training.metrics import split_users
from app.training.train import TEST_DATA_FILE_NAME, train
from tests.experiment.candidates import reversed_candidate
from tests.run_accuracy_tests import REFERENCES, checked

SCRIPT = Path(__file__).parent / "run_accuracy_tests.py"
# The forest that the seed test trains 20 times: 10 trees instead of 100, a pool of 150 movies instead of 300. The
# README ("What the accuracy check proves") shows the served forest's verdicts are the same at these seeds.
REDUCED_FOREST = {"n_estimators": 10, "pool_size": 150}
GATE_SEEDS = range(1, 11)
FIT = RelevanceForest.fit
NO_RANKED_USERS = '"ranking": {"k": 10, "users": [], "most_rated_4plus": [], "pool_positive_share": []}'
NO_USERS = NO_RANKED_USERS + ', "warm": {"revealed": 5, "users": []}}'
UNKNOWN_MOVIE = '{"data": [[30, "M", "writer", 999999]], "target": [1], "expected_score": 0.1, ' + NO_USERS


def run_check(*arguments: str | Path) -> subprocess.CompletedProcess:
    # From another directory, as the Docker build runs it: the script must find the app by itself.
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, arguments)], capture_output=True, text=True, cwd="/")


def test_a_model_on_its_own_test_data_passes(synthetic_model_dir: Path) -> None:
    result = run_check(synthetic_model_dir / MODEL_FILE_NAME, synthetic_model_dir / TEST_DATA_FILE_NAME)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("accuracy check passed")
    assert "ranking gate passed: NDCG@10" in result.stdout
    assert "warm gate passed: NDCG@10" in result.stdout and "for the cold model" in result.stdout


def test_a_model_that_ignores_the_scores_fails_the_warm_gate(synthetic_model_dir: Path, tmp_path: Path) -> None:
    joblib.dump(cold_twin(joblib.load(synthetic_model_dir / MODEL_FILE_NAME)), tmp_path / MODEL_FILE_NAME)
    result = run_check(tmp_path / MODEL_FILE_NAME, synthetic_model_dir / TEST_DATA_FILE_NAME)
    assert result.returncode == 1, result.stdout
    assert "ranking gate passed" in result.stdout
    assert "warm gate FAILED" in result.stderr and "the lists are those of the cold model" in result.stderr


def serving_the_popular_list(model_dir: Path, out_dir: Path) -> Path:
    """The trained model, its forest untouched (so its R^2 stays), but recommending the test data's "most rated 4+"
    list to everyone: the model that the gate must not let through."""
    model = popular_twin(joblib.load(model_dir / MODEL_FILE_NAME), model_dir)
    out_dir.mkdir()
    joblib.dump(model, out_dir / MODEL_FILE_NAME)
    return out_dir / MODEL_FILE_NAME


def popular_twin(model: RelevanceForest, model_dir: Path) -> RelevanceForest:
    """The model, changed to rank its test data's "most rated 4+" first for everyone."""
    popular = json.loads((model_dir / TEST_DATA_FILE_NAME).read_text())["ranking"]["most_rated_4plus"]
    positions = pd.Index(model.titles_).get_indexer(popular)
    rest = [position for position in model.rankings_[0, 0, 0] if position not in positions]
    model.rankings_[...] = np.concatenate([positions, rest])[: model.rankings_.shape[-1]]
    return model


def reversed_twin(model: RelevanceForest) -> RelevanceForest:
    """The model with every person's ranking reversed, as tests/experiment/candidates.py makes it."""
    model.rankings_ = model.rankings_[..., ::-1].copy()
    return model


def cold_twin(model: RelevanceForest) -> RelevanceForest:
    """The model without its warm part: it answers its cold lists whatever the person scored, as a model made
    before warm start does."""
    del model.warm_
    return model


def twins(model_dir: Path) -> Iterator[tuple[str, RelevanceForest]]:
    """The model trained there, then each of its broken twins (the forest, and so the R^2, untouched)."""
    yield "model", joblib.load(model_dir / MODEL_FILE_NAME)
    yield "popular list", popular_twin(joblib.load(model_dir / MODEL_FILE_NAME), model_dir)
    yield "reversed", reversed_twin(joblib.load(model_dir / MODEL_FILE_NAME))
    yield "scores ignored", cold_twin(joblib.load(model_dir / MODEL_FILE_NAME))


def build_gate(model: RelevanceForest, model_dir: Path) -> dict[str, Verdict]:
    """Every gate's verdict on the model, as run_accuracy_tests.py decides them with the test data trained beside
    it; its R^2 check must pass."""
    score, expected, gates = checked(Recommender(model, "under test"), model_dir / TEST_DATA_FILE_NAME)
    assert score >= expected - 1e-5
    return gates


def fit_on_shuffled_targets(
    forest: RelevanceForest, training: Dataset, people: Dataset | None = None
) -> RelevanceForest:
    """RelevanceForest.fit, on the ratings shuffled among the rated (user, movie) pairs."""
    shuffled = np.random.RandomState(0).permutation(training.ratings["rating"].to_numpy())
    return FIT(forest, Dataset(training.users, training.movies, training.ratings.assign(rating=shuffled)), people)


def reduced_forest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training makes the smaller forest of REDUCED_FOREST from now on in the test."""
    monkeypatch.setattr(training_module, "RelevanceForest", functools.partial(RelevanceForest, **REDUCED_FOREST))


def test_a_model_serving_the_popular_list_to_everyone_fails_the_gate(synthetic_model_dir: Path, tmp_path: Path) -> None:
    popular = serving_the_popular_list(synthetic_model_dir, tmp_path / "popular")
    result = run_check(popular, synthetic_model_dir / TEST_DATA_FILE_NAME)
    assert "accuracy check passed: R^2" in result.stdout
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("ranking gate FAILED: NDCG@10 ")
    assert line.endswith(": the lists are those of most rated 4+")
    # It ties popularity exactly: the bootstrap of a zero difference is zero, not above it.
    assert "bootstrap 5th percentile of the difference +0.0000" in line


def test_a_model_that_ranks_below_popularity_fails_the_gate(synthetic_model_dir: Path, tmp_path: Path) -> None:
    """The same model, on one held-out user and their rows, against a popularity list that happens to be their own
    likes and a popularity that scores their likes 1 and the rest 0."""
    test_data = json.loads((synthetic_model_dir / TEST_DATA_FILE_NAME).read_text())
    ranking = test_data["ranking"]
    person = next(index for index, user in enumerate(ranking["users"]) if user["liked"] and user["disliked"])
    user, pool = ranking["users"][person], len(ranking["pool_positive_share"])
    rows = slice(person * pool, (person + 1) * pool)
    test_data["data"], test_data["target"] = test_data["data"][rows], test_data["target"][rows]
    ranking["users"], ranking["most_rated_4plus"], ranking["pool_positive_share"] = (
        [user],
        user["liked"],
        test_data["target"],
    )
    (tmp_path / "popular.json").write_text(json.dumps(test_data))
    result = run_check(synthetic_model_dir / MODEL_FILE_NAME, tmp_path / "popular.json")
    assert result.returncode == 1
    assert "ranking gate FAILED: NDCG@10" in result.stderr
    assert "taste gate FAILED: AUC among rated titles" in result.stderr


def test_a_model_serving_each_ranking_reversed_fails_the_gate(synthetic_model_dir: Path, tmp_path: Path) -> None:
    reversed_model = reversed_candidate(synthetic_model_dir, tmp_path / "reversed")
    result = run_check(reversed_model, synthetic_model_dir / TEST_DATA_FILE_NAME)
    assert "accuracy check passed: R^2" in result.stdout
    assert result.returncode == 1
    assert "ranking gate FAILED" in result.stderr


@pytest.mark.dataset
def test_the_gate_passes_the_real_model(real_model_dir: Path) -> None:
    result = run_check(real_model_dir / MODEL_FILE_NAME, real_model_dir / TEST_DATA_FILE_NAME)
    assert result.returncode == 0, result.stderr
    assert "ranking gate passed" in result.stdout


@pytest.mark.dataset
def test_at_every_training_seed_the_model_passes_and_its_broken_twins_are_refused(
    real_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeds 1-10 of a smaller forest (the README shows that the served forest's verdicts are the same): the model
    passes every gate, and the popular list for everyone, the ranking reversed, a forest on shuffled targets and
    the model with its warm part removed each fail one. The table of every verdict is the message of a failure."""
    reduced_forest(monkeypatch)
    verdicts = {}
    for seed in GATE_SEEDS:
        train(real_data_dir, tmp_path / f"model-{seed}", seed)
        verdicts[seed] = {
            name: build_gate(model, tmp_path / f"model-{seed}") for name, model in twins(tmp_path / f"model-{seed}")
        }
    with monkeypatch.context() as shuffling:
        shuffling.setattr(RelevanceForest, "fit", fit_on_shuffled_targets)
        for seed in GATE_SEEDS:
            train(real_data_dir, tmp_path / f"shuffled-{seed}", seed)
            estimator = joblib.load(tmp_path / f"shuffled-{seed}" / MODEL_FILE_NAME)
            verdicts[seed]["shuffled targets"] = build_gate(estimator, tmp_path / f"shuffled-{seed}")
    table = "\n".join(
        f"seed {seed} {name}, {gate} gate {'passed' if verdict.passed else 'FAILED'}: "
        f"{verdict.describe(REFERENCES[gate])}"
        for seed, row in verdicts.items()
        for name, gates in row.items()
        for gate, verdict in gates.items()
    )
    passes = {
        (seed, name): all(verdict.passed for verdict in gates.values())
        for seed, row in verdicts.items()
        for name, gates in row.items()
    }
    assert all(passes[seed, "model"] for seed in GATE_SEEDS), table
    assert not any(passed for (_, name), passed in passes.items() if name != "model"), table


def test_a_score_below_the_expected_one_fails(synthetic_model_dir: Path, tmp_path: Path) -> None:
    test_data = json.loads((synthetic_model_dir / TEST_DATA_FILE_NAME).read_text())
    test_data["expected_score"] += 0.01
    (tmp_path / "harder.json").write_text(json.dumps(test_data))
    result = run_check(synthetic_model_dir / MODEL_FILE_NAME, tmp_path / "harder.json")
    assert result.returncode == 1
    assert "accuracy check FAILED: R^2" in result.stderr


def test_the_tolerance_admits_a_slightly_lower_score(synthetic_model_dir: Path, tmp_path: Path) -> None:
    test_data = json.loads((synthetic_model_dir / TEST_DATA_FILE_NAME).read_text())
    test_data["expected_score"] += 0.001
    (tmp_path / "harder.json").write_text(json.dumps(test_data))
    result = run_check(synthetic_model_dir / MODEL_FILE_NAME, tmp_path / "harder.json", "--error-tolerance", "0.01")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("test_data", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        ("[1, 2]", "must be an object with data, target and expected_score"),
        ('{"data": [], "target": [], "expected_score": 0.1}', "non-empty lists of the same length"),
        ('{"data": [[1, "M", "writer", 1]], "target": [1], "expected_score": "high"}', "finite number"),
        ('{"data": [[1, "M", "writer", 1]], "target": [1], "expected_score": 0.1}', "has no ranking check"),
        (
            '{"data": [[1, "M", "writer", 1]], "target": [1], "expected_score": 0.1, ' + NO_RANKED_USERS + "}",
            "has no warm check",
        ),
        (UNKNOWN_MOVIE, "unknown movie_id"),
        ('{"data": [[30, "M"]], "target": [1], "expected_score": 0.1, ' + NO_USERS, "accuracy check:"),
    ],
)
def test_a_missing_or_malformed_test_file_is_one_clear_line(
    synthetic_model_dir: Path, tmp_path: Path, test_data: str | None, message: str
) -> None:
    path = tmp_path / "test_data.json"
    if test_data is not None:
        path.write_text(test_data)
    result = run_check(synthetic_model_dir / MODEL_FILE_NAME, path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "message"), [(None, "cannot read"), (pickle.dumps({"a": 1}), "not a RelevanceForest")]
)
def test_a_missing_file_or_one_that_is_not_a_model_is_one_clear_line(
    synthetic_model_dir: Path, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / MODEL_FILE_NAME
    if content is not None:
        path.write_bytes(content)
    result = run_check(path, synthetic_model_dir / TEST_DATA_FILE_NAME)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def scored_live_log(
    database: str, served: Recommender, people: pd.DataFrame, score: Callable[[int, str], int | None]
) -> int:
    """A live log as the service writes it: each person asks once for 10 titles, and scores those that score(user,
    title) gives a score for. The scores written."""
    log = RecommendationLog(make_engine(database))
    log.create_tables()
    written = 0
    for user in people.itertuples():
        titles = served.recommend(int(user.age), user.gender, user.occupation)
        recommendation = log.record_recommendation(
            age=int(user.age), gender=user.gender, occupation=user.occupation, max_recs=10, titles=titles,
            model_version=served.version,
        )  # fmt: skip
        for title in titles:
            given = score(user.Index, title)
            if given is not None:
                log.record_score(recommendation_id=recommendation, movie=title, score=given)
                written += 1
    log.engine.dispose()
    return written


@pytest.mark.dataset
def test_a_model_retrained_with_a_few_hundred_live_scores_passes(
    real_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three small logs of the kind the README's cycle reads: people of ml-100k's training users scoring the shown
    titles they rated with their own rating, random scores, and one segment that loves comedies and nothing else."""
    reduced_forest(monkeypatch)
    train(real_data_dir, tmp_path / "served", 1)
    served = Recommender.load(tmp_path / "served" / MODEL_FILE_NAME)
    dataset = load_dataset(real_data_dir)
    training_users, _ = split_users(dataset.users.index, seed=1, held_out_share=training_module.TEST_USER_SHARE)
    people = dataset.users.loc[training_users]
    rated = dataset.ratings.assign(title=dataset.movies["title"].loc[dataset.ratings["movie_id"]].to_numpy())
    own = rated.set_index(["user_id", "title"])["rating"].to_dict()
    comedies = set(dataset.movies.loc[dataset.movies["Comedy"] == 1, "title"])
    rng = np.random.RandomState(0)
    logs = {
        "own ratings": (people.sample(80, random_state=1), lambda user, title: own.get((user, title))),
        "random scores": (people.sample(40, random_state=2), lambda user, title: int(rng.randint(1, 6))),
        "comedy lovers": (
            people[(people["gender"] == "F") & people["age"].between(25, 34)].head(40),
            lambda user, title: 5 if title in comedies else 1,
        ),
    }
    for name, (who, score) in logs.items():
        database = sqlite_url(tmp_path / f"{name}.sqlite3")
        assert 200 <= scored_live_log(database, served, who, score) <= 800, name
        train(real_data_dir, tmp_path / name, 1, feedback_db=database)
        result = run_check(tmp_path / name / MODEL_FILE_NAME, tmp_path / name / TEST_DATA_FILE_NAME)
        assert result.returncode == 0, (name, result.stdout, result.stderr)
