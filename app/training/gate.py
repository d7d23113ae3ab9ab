"""The gates' one rule: does a candidate rank the same people's liked titles better than a reference? (no Flask)

Every gate decides with `judge`: the build's ranking gate (tests/run_accuracy_tests.py, the model against the
training users' "most rated 4+" for the held-out users), `python -m app.experiment start`'s candidate check
(which runs that script), and the warm-start check (the model given revealed scores against the cold model,
for the same people and the same revealed titles).

The evidence is each person's NDCG@GATE_DEPTH of both lists (binary gains: the titles they rated 4 or 5),
paired per person. The candidate passes when the one-sided 95% lower bound of the mean difference, candidate
minus reference, is above zero: the 5th percentile of a paired bootstrap over the people (seeded, so that a
model always gets the same verdict). A tie fails: a candidate that serves the reference's own list is no better.

The power comes from the people: the build gate's held-out users are 20% of ml-100k (app/training/train.py), and
the README ("What the accuracy check proves") gives the error rates measured over training seeds 1-10.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.training.metrics import ndcg_at_k

# Every ranked list the gate compares is read this deep: the top 10, what people see first.
GATE_DEPTH = 10
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
# One-sided 95%: the candidate must be ahead in all but the worst 5% of resampled populations.
LOWER_PERCENTILE = 5


@dataclass(frozen=True)
class Verdict:
    candidate: float  # mean NDCG@GATE_DEPTH of the candidate's lists over the people judged
    reference: float  # the same of the reference's lists
    people: int  # the people judged: those who liked any title
    lower_bound: float  # LOWER_PERCENTILE of the bootstrapped mean of (candidate - reference), per person

    @property
    def passed(self) -> bool:
        return self.lower_bound > 0

    def describe(self, reference_name: str) -> str:
        """One line: both means, the people, and the lower bound."""
        return (
            f"NDCG@{GATE_DEPTH} {self.candidate:.4f} against {self.reference:.4f} for {reference_name}, "
            f"on {self.people} held-out people; bootstrap {LOWER_PERCENTILE}th percentile of the difference "
            f"{self.lower_bound:+.4f}"
        )


def judge(
    candidate_lists: Sequence[Sequence[str]], reference_lists: Sequence[Sequence[str]], liked: Sequence[set[str]]
) -> Verdict:
    """The verdict on the candidate's lists against the reference's, one of each per person (titles, best first),
    given the titles each person liked. People who liked nothing have nothing to find and are left out."""
    if not len(candidate_lists) == len(reference_lists) == len(liked):
        raise ValueError("the gate needs one candidate list, one reference list and one set of likes per person")
    judged = [person for person, titles in enumerate(liked) if titles]
    if not judged:
        raise ValueError("the gate has no person who liked any title")
    liked = [liked[person] for person in judged]
    candidate = person_ndcg([candidate_lists[person] for person in judged], liked)
    reference = person_ndcg([reference_lists[person] for person in judged], liked)
    return Verdict(
        float(candidate.mean()), float(reference.mean()), len(judged), bootstrap_lower_bound(candidate - reference)
    )


def person_ndcg(lists: Sequence[Sequence[str]], liked: Sequence[set[str]]) -> np.ndarray:
    """Each person's NDCG@GATE_DEPTH of their list; a list shorter than that finds nothing past its end."""
    columns = {title: column for column, title in enumerate(set().union(*liked, *lists))}
    # One column more, liked by nobody, fills short lists.
    relevant = np.zeros((len(liked), len(columns) + 1), dtype=bool)
    for row, titles in enumerate(liked):
        relevant[row, [columns[title] for title in titles]] = True
    top = np.full((len(lists), GATE_DEPTH), len(columns))
    for row, titles in enumerate(lists):
        top[row, : min(len(titles), GATE_DEPTH)] = [columns[title] for title in titles[:GATE_DEPTH]]
    return ndcg_at_k(top, relevant, GATE_DEPTH)


def bootstrap_lower_bound(differences: np.ndarray) -> float:
    """LOWER_PERCENTILE of the mean of differences over people drawn with replacement (a paired bootstrap: each
    person's two scores stay together, so what a person brings to both cancels)."""
    rows = np.random.RandomState(BOOTSTRAP_SEED).randint(len(differences), size=(BOOTSTRAP_RESAMPLES, len(differences)))
    return float(np.percentile(differences[rows].mean(axis=1), LOWER_PERCENTILE))
