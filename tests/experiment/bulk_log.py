"""A large recommendation log for one experiment, made in bulk inside PostgreSQL, and its running sums.

The rows are made by the server itself (INSERT ... SELECT over generate_series: a million in seconds, no
round trip per row), then summed by app/store/sums_from_log.py, the rules by which a database made before
the running sums is summed (tests/store/test_experiment_sums.py shows them equal to the sums kept row by row).
Half the recommendations come from people who asked several times (a client key), half from anonymous
requests; a tenth are scored, with one to three scores each.
"""

from __future__ import annotations

import json

from sqlalchemy import Engine, text

from app.store.sums_from_log import sum_log

TITLES = json.dumps([f"Movie {number} (1990)" for number in range(10)])
PEOPLE_SHARE = 0.1  # people per recommendation that has a client key

RECOMMENDATIONS = """
INSERT INTO recommendations
    (id, created_at, age, gender, occupation, max_recs, titles, model_version, explain, client, experiment_id, arm)
SELECT id, now(), 30, 'F', 'writer', 10, CAST(:titles AS json), :version, false, client, :experiment_id,
       CASE WHEN abs(hashtext(coalesce(client, id))) % 10000 < :share * 10000 THEN 'candidate' ELSE 'control' END
FROM (
    SELECT :prefix || n AS id,
           CASE WHEN n % 2 = 0 THEN :prefix || 'person-' || (n % greatest(1, (:count * :people)::bigint)) END
               AS client
    FROM generate_series(1, :count) AS n
) AS made
"""
SCORES = """
INSERT INTO scores (recommendation_id, movie, score, scored_at)
SELECT id, 'Movie ' || k || ' (1990)', 1 + abs(hashtext(id || k)) % 5, now()
FROM recommendations, generate_series(0, abs(hashtext(id)) % 3) AS k
WHERE experiment_id = :experiment_id AND abs(hashtext(id || 'scored')) % 10 = 0
"""


def load_experiment_log(engine: Engine, *, experiment_id: int, count: int, share: float, version: str) -> None:
    """count recommendations of the experiment (on a database with no sums yet), their scores, and the sums."""
    parameters = {
        "titles": TITLES, "version": version, "experiment_id": experiment_id, "share": share,
        "prefix": f"bulk{experiment_id}-", "count": count, "people": PEOPLE_SHARE,
    }  # fmt: skip
    with engine.begin() as connection:
        connection.execute(text(RECOMMENDATIONS), parameters)
        connection.execute(text(SCORES), {"experiment_id": experiment_id})
        sum_log(connection)
