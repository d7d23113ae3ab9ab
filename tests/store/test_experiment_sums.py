"""The running sums of an experiment against the same sums recomputed from the raw rows (pandas), and made in bulk."""

from __future__ import annotations

import random
import threading
from pathlib import Path

from sqlalchemy import delete, select

from app.model.data import RELEVANT_RATING
from app.store.experiment_sums import LIKED_SCORE, arm_sums
from app.store.experiments import start_experiment
from app.store.journal import Journal
from app.store.recommendation_log import RecommendationLog
from app.store.sums_from_log import sum_log
from app.store.tables import experiment_arm_sums, experiment_units, recommendations
from tests.store.log_sums import sums_by_pandas

TITLES = [f"Movie {number} (1990)" for number in range(10)]
SCORES = [1, 2, 3, 3.5, 4, 4.5, 5]
EXPERIMENT = 1


def as_floats(summed: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {arm: {name: float(value) for name, value in sums.items()} for arm, sums in summed.items()}


def recommend(log: RecommendationLog, draw: random.Random, number: int) -> str:
    """A recommendation of the experiment, of another one, or of none (before the experiment started)."""
    experiment_id = draw.choice([EXPERIMENT, EXPERIMENT, EXPERIMENT, 2, None])
    return log.record_recommendation(
        age=30, gender="F", occupation="writer", max_recs=10, titles=TITLES[: draw.randint(1, 10)],
        model_version="v" * 64, client=draw.choice([None, None, f"person-{number % 17}"]),
        experiment_id=experiment_id, arm=None if experiment_id is None else draw.choice(["control", "candidate"]),
    )  # fmt: skip


def score_some(log: RecommendationLog, draw: random.Random, recommended: list[str], count: int) -> None:
    """Scores for recommendations old and new: first scores, late ones, and titles scored again."""
    for _ in range(count):
        recommendation_id = draw.choice(recommended)
        movie = draw.choice(TITLES[:3])  # every recommendation shows at least one; a few titles, rescored often
        try:
            log.record_score(recommendation_id=recommendation_id, movie=movie, score=draw.choice(SCORES))
        except Exception as error:  # a title this recommendation did not show
            assert getattr(error, "field", None) == "movie"


def assert_units_are_the_clients(log: RecommendationLog) -> None:
    """A row per client of an experiment's arm, and none for a recommendation without a client (its own unit)."""
    with log.engine.connect() as connection:
        rows = set(connection.execute(select(experiment_units.c.experiment_id, experiment_units.c.arm,
                                             experiment_units.c.unit)).all())  # fmt: skip
        clients = set(
            connection.execute(
                select(recommendations.c.experiment_id, recommendations.c.arm, recommendations.c.client)
                .where(recommendations.c.experiment_id.is_not(None), recommendations.c.client.is_not(None))
                .distinct()
            ).all()
        )
    assert rows == clients


def assert_sums_match_the_log(log: RecommendationLog) -> None:
    expected = sums_by_pandas(log.engine, EXPERIMENT)
    assert as_floats(arm_sums(log.engine, EXPERIMENT)) == expected
    assert_units_are_the_clients(log)
    # The same sums made in bulk from the log, by the same rules (how a log loaded in bulk, or an old one, is summed).
    with log.engine.begin() as connection:
        connection.execute(delete(experiment_arm_sums))
        connection.execute(delete(experiment_units))
        sum_log(connection)
    assert as_floats(arm_sums(log.engine, EXPERIMENT)) == expected
    assert_units_are_the_clients(log)


def test_the_liked_score_is_the_models() -> None:
    assert LIKED_SCORE == RELEVANT_RATING


def test_the_running_sums_are_the_logs_after_copies_late_scores_and_rescores(
    log: RecommendationLog, tmp_path: Path
) -> None:
    draw = random.Random(5)
    journaled = RecommendationLog(log.engine, Journal(tmp_path / "journal"), log.ids)
    recommended: list[str] = []
    for round_number in range(4):
        for number in range(40):
            recommended.append(recommend(draw.choice([log, journaled]), draw, number))
        journaled.drain_journal()
        # Half the scores come in a later round than their recommendation (late), many replace an earlier one.
        score_some(log, draw, recommended, 50)
        if round_number == 2:
            journaled.drain_journal()  # nothing new: nothing counted twice
    assert_sums_match_the_log(log)
    # After the bulk sums, rows keep being counted as they arrive.
    for number in range(20):
        recommended.append(recommend(journaled, draw, number))
    journaled.drain_journal()
    score_some(log, draw, recommended, 40)
    assert_sums_match_the_log(log)


def test_a_recommendation_copied_twice_is_counted_once(log: RecommendationLog, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    journaled = RecommendationLog(log.engine, journal, log.ids)
    recommend_id = journaled.record_recommendation(
        age=30, gender="F", occupation="writer", max_recs=3, titles=TITLES[:3], model_version="v" * 64,
        experiment_id=EXPERIMENT, arm="control",
    )  # fmt: skip
    journaled.drain_journal()
    (path,) = sorted(journal.directory.glob("*.jsonl"))
    again = RecommendationLog(log.engine, Journal(tmp_path / "again"), log.ids)
    # The same line in another journal file, as a replica restored from a backup of the journal would copy it.
    again.journal.directory.joinpath(f"copy-{path.name}").write_bytes(path.read_bytes())
    assert again.drain_journal() == 0  # the copy inserts nothing: the recommendation is there already
    assert not any(again.journal.directory.glob("*.jsonl"))  # and the file is copied and gone
    assert arm_sums(log.engine, EXPERIMENT)["control"]["recommendations"] == 1
    log.record_score(recommendation_id=recommend_id, movie=TITLES[0], score=5)
    assert_sums_match_the_log(log)


def test_concurrent_copies_and_scores_lose_nothing(log: RecommendationLog, tmp_path: Path) -> None:
    journaled = [RecommendationLog(log.engine, Journal(tmp_path / f"journal-{n}"), log.ids) for n in range(2)]
    draw = random.Random(8)
    recommended = [recommend(log, draw, number) for number in range(100)]
    failures: list[BaseException] = []

    def run(work) -> None:
        try:
            work()
        except BaseException as error:
            failures.append(error)

    def copies(replica: RecommendationLog, seed: int) -> None:
        replica_draw = random.Random(seed)
        for number in range(100):
            recommend(replica, replica_draw, number)
            if number % 10 == 0:
                replica.drain_journal()
        replica.drain_journal()

    def scores(seed: int) -> None:
        score_some(log, random.Random(seed), recommended, 80)

    works = [lambda r=r, n=n: copies(r, n) for n, r in enumerate(journaled)] + [lambda n=n: scores(n) for n in range(4)]
    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert_sums_match_the_log(log)


def test_an_experiment_running_across_the_upgrade_is_summed_from_the_log_at_start(log: RecommendationLog) -> None:
    draw = random.Random(11)
    recommended = [recommend(log, draw, number) for number in range(60)]
    score_some(log, draw, recommended, 60)
    start_experiment(
        log.engine, share=0.5, control_version="c" * 64, candidate_version="d" * 64, candidate_model=b"model",
        candidate_metadata="{}", candidate_signature="0" * 64, ranking_gate_skipped=True,
    )  # fmt: skip
    # The database as the version before the running sums left it: the log and the experiment, no sums.
    experiment_arm_sums.drop(log.engine)
    experiment_units.drop(log.engine)
    log.create_tables()  # a start of this version
    assert as_floats(arm_sums(log.engine, EXPERIMENT)) == sums_by_pandas(log.engine, EXPERIMENT)
    recommended += [recommend(log, draw, number) for number in range(20)]
    score_some(log, draw, recommended, 30)
    log.create_tables()  # a later start sums nothing again
    assert_sums_match_the_log(log)
