"""The cold-start protocol's user split and ranking metrics (spec 4.2; no Flask)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

HELD_OUT_SHARE = 0.2


def split_users(user_ids: pd.Index, *, seed: int, held_out_share: float = HELD_OUT_SHARE) -> tuple[pd.Index, pd.Index]:
    """(kept, held out): a seeded permutation of the sorted user ids, the first share held out."""
    ordered = np.sort(user_ids.to_numpy())
    shuffled = ordered[np.random.RandomState(seed).permutation(len(ordered))]
    cut = round(len(ordered) * held_out_share)
    return pd.Index(np.sort(shuffled[cut:])), pd.Index(np.sort(shuffled[:cut]))


def hits(top: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1 where the movie at each rank of each user's list is relevant to that user (users x k)."""
    return np.take_along_axis(relevant, top, axis=1)


def ndcg_at_k(top: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k with binary gains; users with nothing relevant score 0."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits(top[:, :k], relevant) * discounts).sum(axis=1)
    ideal_counts = np.minimum(relevant.sum(axis=1), k).astype(int)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_counts]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def precision_at_k(top: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    return hits(top[:, :k], relevant).sum(axis=1) / k


def recall_at_k(top: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    found = hits(top[:, :k], relevant).sum(axis=1)
    total = relevant.sum(axis=1)
    return np.divide(found, total, out=np.zeros_like(found), where=total > 0)


def coverage(top: np.ndarray, catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    return len(np.unique(top)) / catalogue_size


def corrected_interval(values: np.ndarray, held_out_share: float = HELD_OUT_SHARE) -> list[float] | None:
    """The 95% interval of the mean of values, one per split, by the corrected resampled t-test of Nadeau and
    Bengio ("Inference for the Generalization Error", Machine Learning 52, 239-281, 2003). The splits are not
    independent: any two share most of their training users, so the variance of the mean of J splits is not
    s^2 / J but about s^2 (1/J + n_test/n_train). None for a single split, whose spread is unknown."""
    splits = len(values)
    if splits < 2:
        return None
    variance = values.var(ddof=1) * (1 / splits + held_out_share / (1 - held_out_share))
    half_width = stats.t.ppf(0.975, splits - 1) * np.sqrt(variance)
    return [float(values.mean() - half_width), float(values.mean() + half_width)]
