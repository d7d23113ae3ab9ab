"""Warm-start evaluation (spec 4.4; no Flask): the next list for a held-out user who has scored k titles.

For each held-out user, k of their ratings are revealed (at random, or their first k by time, MovieLens's own
sign-up order); every other movie is ranked, and a movie is relevant when the user rated it 4 or 5 among the
rest. Only users with a relevant movie left count, the same users for every method at one k. The methods: the
model with the revealed scores (warm), the same model without them (cold, the revealed titles removed from its
list), and the session baseline: "most rated 4+" plus the item-item neighbours of the titles scored 4 or 5,
as Gorse's session recommendation does (it ignores the score's value).
"""

from __future__ import annotations

import numpy as np

from app.model.data import RELEVANT_RATING, Dataset
from app.model.features import People, rating_matrices
from app.model.forest import RelevanceForest
from app.model.session import cosine_to_pool, reveal, score_matrix
from app.training.metrics import corrected_interval, ndcg_at_k

SESSION_SIZES = (1, 3, 5, 10)
REVEALED = {"at random": True, "first by time": False}
WARM, COLD, SESSION_BASELINE = "model with the scores", "model without them (cold)", "most rated 4+ and neighbours"
METHODS = (WARM, COLD, SESSION_BASELINE)
# The session baseline's weight of the neighbours against popularity, both z-scored (MODEL-NOTES: best 1-2).
NEIGHBOUR_WEIGHT = 1.0
K = 10
# The build's warm check (test_data.json): the model with this many random scores against the cold model.
GATE_REVEALED = 5


def evaluate_warm_split(model: RelevanceForest, training: Dataset, held_out: Dataset, seed: int) -> dict:
    """NDCG@10 of each method, per way of revealing and per k: {way: {k: {method: mean, "users": n}}}."""
    people = People.from_users(held_out.users)
    scores, times = score_matrix(held_out.ratings, held_out.users.index, held_out.movies.index)
    baseline = SessionBaseline(training)
    results = {}
    for way, at_random in REVEALED.items():
        results[way] = {}
        for k in SESSION_SIZES:
            rng = np.random.RandomState([seed, k])
            revealed = reveal(scores, times, np.full(len(scores), k), np.full(len(scores), at_random), rng)
            relevant = ((scores >= RELEVANT_RATING) & (revealed == 0)).astype(np.float32)
            judged = relevant.sum(axis=1) > 0
            tops = {
                WARM: warm_top(model, people, revealed),
                COLD: cold_top(model, people, revealed),
                SESSION_BASELINE: baseline.top(revealed),
            }
            results[way][str(k)] = {
                **{method: float(ndcg_at_k(top[judged], relevant[judged], K).mean()) for method, top in tops.items()},
                "users": int(judged.sum()),
            }
    return results


def warm_top(model: RelevanceForest, people: People, revealed: np.ndarray) -> np.ndarray:
    """Each user's K best pool movies by the warm forest, the revealed ones left out."""
    scored = np.flatnonzero(revealed.any(axis=0))
    relevance = model.warm_relevance(people, scored, revealed[:, scored])
    relevance[revealed[:, model.pool_] > 0] = -np.inf
    return model.pool_[np.argsort(-relevance, axis=1, kind="stable")[:, :K]]


def cold_top(model: RelevanceForest, people: People, revealed: np.ndarray) -> np.ndarray:
    """Each user's cold list with the revealed movies taken out, as the service answers a model without warm start."""
    top = model.top_movies(people, model.rankings_.shape[-1])
    taken_out = np.take_along_axis(revealed, top.astype(np.int64), axis=1) > 0
    return np.take_along_axis(top, np.argsort(taken_out, axis=1, kind="stable"), axis=1)[:, :K]


class SessionBaseline:
    """ "Most rated 4+" plus the neighbours of the titles scored 4 or 5 (cosine over who liked them), z-scored."""

    def __init__(self, training: Dataset) -> None:
        _, positive = rating_matrices(training.users.index, training.movies.index, training.ratings)
        share = positive.mean(axis=0)
        self.popularity = (share - share.mean()) / share.std()
        self.neighbours = cosine_to_pool(positive, np.arange(positive.shape[1]))

    def top(self, revealed: np.ndarray) -> np.ndarray:
        near = (revealed >= RELEVANT_RATING).astype(np.float32) @ self.neighbours
        spread = near.std(axis=1, keepdims=True)
        near = np.divide(near - near.mean(axis=1, keepdims=True), spread, out=np.zeros_like(near), where=spread > 0)
        scores = self.popularity[None, :] + NEIGHBOUR_WEIGHT * near
        scores[revealed > 0] = -np.inf
        return np.argsort(-scores, axis=1, kind="stable")[:, :K]


def summarise_warm(per_seed: list[dict]) -> dict:
    """Per way and k: each method's mean NDCG@10, and the model's ratio to the cold model and to the session
    baseline, paired per seed, with Nadeau and Bengio's interval."""
    summary = {}
    for way in REVEALED:
        summary[way] = {}
        for k in map(str, SESSION_SIZES):
            cells = [seed[way][k] for seed in per_seed]
            row = {method: float(np.mean([cell[method] for cell in cells])) for method in METHODS}
            for name, other in (("to_cold", COLD), ("to_session_baseline", SESSION_BASELINE)):
                ratios = np.array([cell[WARM] / cell[other] for cell in cells])
                row[f"ratio_{name}"] = {
                    "per_seed": ratios.tolist(), "mean": float(ratios.mean()), "min": float(ratios.min()),
                    "interval_95": corrected_interval(ratios),
                }  # fmt: skip
            row["users"] = int(np.mean([cell["users"] for cell in cells]))
            summary[way][k] = row
    return summary


def warm_check(held_out: Dataset, seed: int, revealed: int = GATE_REVEALED) -> dict:
    """What the build's warm check ranks (test_data.json's "warm"): each held-out user's demographics, `revealed`
    of their ratings at random as rated, and the titles they rated 4 or 5 among the rest."""
    titles = held_out.movies["title"].to_numpy()
    scores, times = score_matrix(held_out.ratings, held_out.users.index, held_out.movies.index)
    sizes, at_random = np.full(len(scores), revealed), np.ones(len(scores), dtype=bool)
    shown = reveal(scores, times, sizes, at_random, np.random.RandomState(seed))
    users = []
    for row, user in enumerate(held_out.users.itertuples()):
        given = np.flatnonzero(shown[row])
        rest = np.flatnonzero((scores[row] >= RELEVANT_RATING) & (shown[row] == 0))
        users.append({
            "age": int(user.age), "gender": user.gender, "occupation": user.occupation,
            "rated": [{"movie": titles[movie], "score": float(shown[row, movie])} for movie in given],
            "liked": sorted(titles[rest].tolist()),
        })  # fmt: skip
    return {"revealed": revealed, "users": users}
