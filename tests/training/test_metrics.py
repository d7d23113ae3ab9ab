from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.training.metrics import coverage, ndcg_at_k, precision_at_k, recall_at_k, split_users

RELEVANT = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 0, 1]], dtype=float)


def test_split_holds_out_a_seeded_fifth_of_the_users() -> None:
    users = pd.Index(np.arange(1, 101))
    kept, held_out = split_users(users, seed=4)
    assert len(held_out) == 20
    assert set(kept).isdisjoint(held_out)
    assert set(kept) | set(held_out) == set(users)
    _, again_held_out = split_users(users[::-1], seed=4)
    assert list(again_held_out) == list(held_out)
    assert list(split_users(users, seed=5)[1]) != list(held_out)


def test_split_follows_the_notes_protocol() -> None:
    users = pd.Index(np.arange(1, 944))
    order = np.arange(1, 944)[np.random.RandomState(7).permutation(943)]
    assert sorted(split_users(users, seed=7)[1]) == sorted(order[:189])


def test_ndcg_is_one_for_a_perfect_list_and_zero_for_a_useless_one() -> None:
    perfect = np.array([[0, 2, 1], [0, 1, 2], [1, 4, 0]])
    useless = np.array([[1, 3, 4], [0, 1, 2], [0, 2, 3]])
    np.testing.assert_allclose(ndcg_at_k(perfect, RELEVANT, 3), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(ndcg_at_k(useless, RELEVANT, 3), [0.0, 0.0, 0.0])


def test_ndcg_discounts_a_late_hit() -> None:
    top = np.array([[1, 0, 3]])
    expected = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert ndcg_at_k(top, RELEVANT[:1], 3)[0] == pytest.approx(expected)


def test_precision_recall_and_coverage() -> None:
    top = np.array([[0, 1], [0, 1], [4, 3]])
    np.testing.assert_allclose(precision_at_k(top, RELEVANT, 2), [0.5, 0.0, 0.5])
    np.testing.assert_allclose(recall_at_k(top, RELEVANT, 2), [0.5, 0.0, 0.5])
    assert coverage(top, 5) == pytest.approx(4 / 5)
