"""What a person's scores of this session say about each pool movie: the warm forest's features (no Flask).

A session is the titles a person has scored so far and their scores (1-5). Each pool movie is described by its
item-item neighbourhood to those titles: how close it is to the titles scored 4 or 5 (weighted by score - 3,
so a 5 counts twice a 4), to those scored 1 or 2 (a 1 counts twice a 2), and how often the people who rated the
session's titles rated it at all (the target, "rated 4 or 5", rewards films people see). With the session's
size, its mean score and the cold forest's relevance for the person, they are one row per pool movie.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Co-occurrence shrinkage: a similarity seen among n users counts n / (n + SIMILARITY_SHRINK) of itself.
SIMILARITY_SHRINK = 20.0
NEUTRAL_SCORE = 3.0
# Features also given as z-scores over the pool within each session: how a movie stands among the others for
# this person, whatever the session's size (one liked title or ten).
STANDARDISED = ("liked_similarity", "seen_together", "cold_relevance")


def session_feature_names() -> list[str]:
    return [
        "liked_similarity", "disliked_similarity", "seen_together", "seen_together_by_score",
        "session_size", "session_mean_score", "cold_relevance",
        *(f"{name}_within_session" for name in STANDARDISED),
    ]  # fmt: skip


def cosine_to_pool(outcome: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Catalogue x pool: the cosine of the movies' user vectors (users x catalogue, 0/1), shrunk by how many users
    they share, so that two films that a handful of people happened to like do not count as neighbours."""
    together = outcome.T @ outcome[:, pool]
    norms = np.sqrt(outcome.sum(axis=0))
    scale = np.maximum(norms[:, None] * norms[pool][None, :], 1.0)
    return (together / scale * together / (together + SIMILARITY_SHRINK)).astype(np.float32)


@dataclass(frozen=True)
class Neighbours:
    """The two similarities the features read: over who liked (4 or 5) and over who rated, catalogue x pool."""

    liked: np.ndarray
    rated: np.ndarray

    @classmethod
    def from_matrices(cls, rated: np.ndarray, positive: np.ndarray, pool: np.ndarray) -> Neighbours:
        # Half precision: the model file carries them, and a neighbour's fourth digit does not change a ranking.
        return cls(
            liked=cosine_to_pool(positive, pool).astype(np.float16),
            rated=cosine_to_pool(rated, pool).astype(np.float16),
        )

    def rows(self, positions: np.ndarray) -> Neighbours:
        return Neighbours(liked=self.liked[positions], rated=self.rated[positions])


def session_features(scores: np.ndarray, neighbours: Neighbours, cold_relevance: np.ndarray) -> np.ndarray:
    """Feature rows for sessions x pool movies, session-major.

    scores: sessions x m, a session's score of each of m movies, 0 where it did not score it; neighbours: those m
    movies' rows; cold_relevance: sessions x pool.
    """
    scored = (scores > 0).astype(np.float32)
    size = scored.sum(axis=1, keepdims=True)
    centred = np.where(scores > 0, scores - NEUTRAL_SCORE, 0.0).astype(np.float32)
    liked, disliked = np.clip(centred, 0, None), np.clip(-centred, 0, None)
    mean_score = np.divide(scores.sum(axis=1, keepdims=True), size, out=np.zeros_like(size), where=size > 0)
    liked_similarity = liked @ neighbours.liked.astype(np.float32)
    seen_together = (scored @ neighbours.rated.astype(np.float32)) / np.maximum(size, 1.0)
    columns = [
        liked_similarity,
        disliked @ neighbours.liked.astype(np.float32),
        seen_together,
        centred @ neighbours.rated.astype(np.float32),
        np.broadcast_to(size, cold_relevance.shape),
        np.broadcast_to(mean_score, cold_relevance.shape),
        cold_relevance,
        *(_within_session(column) for column in (liked_similarity, seen_together, cold_relevance)),
    ]
    return np.stack([column.ravel() for column in columns], axis=1).astype(np.float32)


def _within_session(values: np.ndarray) -> np.ndarray:
    """Each row's z-scores (0 where the row does not vary)."""
    spread = values.std(axis=1, keepdims=True)
    centred = values - values.mean(axis=1, keepdims=True)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


def score_matrix(ratings: pd.DataFrame, user_ids: pd.Index, movie_ids: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Users x movies: each rating (0 where none), and when it was given (the latest possible time where none)."""
    rows, cols = user_ids.get_indexer(ratings["user_id"]), movie_ids.get_indexer(ratings["movie_id"])
    scores = np.zeros((len(user_ids), len(movie_ids)), dtype=np.float32)
    times = np.full(scores.shape, np.iinfo(np.int64).max, dtype=np.int64)
    scores[rows, cols] = ratings["rating"].to_numpy()
    times[rows, cols] = ratings["timestamp"].to_numpy()
    return scores, times


def reveal(
    scores: np.ndarray, times: np.ndarray, sizes: np.ndarray, at_random: np.ndarray, rng: np.random.RandomState
) -> np.ndarray:
    """The scores a session starts from: for each user, sizes[user] of their ratings, at random or their first
    by time (MovieLens's own sign-up order). Users x movies, 0 where not revealed."""
    keys = np.where(at_random[:, None], rng.random_sample(scores.shape), times.astype(np.float64))
    keys[scores == 0] = np.inf
    order = np.argsort(keys, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :].repeat(len(scores), axis=0), axis=1)
    return np.where((ranks < sizes[:, None]) & (scores > 0), scores, 0.0).astype(np.float32)
