"""Why a title is recommended: how people like the person rated it, counted at training (no Flask).

A reason speaks of the most specific segment of people like the person (gender, age bucket, occupation)
in which at least MIN_RATERS users rated the title, and says what share of them gave it 4 or 5. The
counts are exact, from the users the model was trained on, each person once. ml-100k has only men and women:
for an asker of gender O, every segment combines both, and says so. A person the model learnt from who gave
gender O (a scored request, app.training.feedback) counts only in segments that do not restrict gender
("men and women"), never among men or among women.
"""

from __future__ import annotations

import re

import numpy as np

from app.model.data import GENDERS, GENRES, OCCUPATIONS, RELEVANT_RATING, Dataset
from app.model.features import (
    AGE_BUCKET_NAMES,
    AGE_BUCKET_STARTS,
    AGE_BUCKETS,
    MODEL_GENDERS,
    People,
    age_buckets,
    rating_matrices,
    segment_totals,
)

# Fewer raters than this say too little about a segment: the reason falls back to a broader one.
MIN_RATERS = 20
# The segments a reason may speak of, most specific first; the last one, everyone, always answers.
SEGMENT_CHAINS = {
    "M": (("gender", "age_bucket", "occupation"), ("gender", "age_bucket"), ("gender",), ()),
    "F": (("gender", "age_bucket", "occupation"), ("gender", "age_bucket"), ("gender",), ()),
    "O": (("age_bucket", "occupation"), ("age_bucket",), ()),
}
ATTRIBUTES = ("gender", "age_bucket", "occupation")
ANY = -1  # a segment that does not restrict this attribute
# An age inside each bucket, to find the bucket's segments.
BUCKET_AGES = np.array([AGE_BUCKET_STARTS[0] - 1, *AGE_BUCKET_STARTS])


def segment_label(gender: int, bucket: int, occupation: int) -> str:
    """Who a segment's people are, for example "women aged 25-34 (occupation: student)"; ANY where unrestricted."""
    words = ["men and women" if gender == ANY else ("men", "women")[gender]]
    if bucket != ANY:
        words.append(f"aged {AGE_BUCKET_NAMES[bucket]}")
    if occupation != ANY:
        words.append(f"(occupation: {OCCUPATIONS[occupation]})")
    return " ".join(words)


class ReasonTable:
    """Every reason a recommendation can carry, made once at training, and which one each person gets for each
    pool movie (people of one segment share their reasons)."""

    def __init__(self, dataset: Dataset, pool: np.ndarray) -> None:
        rated, positive = rating_matrices(dataset.users.index, dataset.movies.index, dataset.ratings)
        gendered = (dataset.users["gender"] != "O").to_numpy()
        # Any gender will do for O: its rows are dropped wherever gender is part of the segment.
        users = People.from_users(dataset.users.assign(gender=dataset.users["gender"].replace("O", MODEL_GENDERS[0])))
        outcomes = rated[:, pool], positive[:, pool]
        chosen = [_chosen_segments(users, gendered, *outcomes, gender) for gender in GENDERS]
        segments = np.stack([segment for segment, _ in chosen])  # genders x askers x movies x (segment, movie)
        counts = np.stack([count for _, count in chosen]).reshape(-1, 2)  # (raters, positives) per row of segments
        distinct, first, reason_of = np.unique(
            segments.reshape(-1, segments.shape[-1]), axis=0, return_index=True, return_inverse=True
        )
        self.reason_of = reason_of.reshape(len(GENDERS), AGE_BUCKETS, len(OCCUPATIONS), len(pool)).astype(np.int32)
        movies = dataset.movies.iloc[pool]
        genres = movies[list(GENRES)].to_numpy(dtype=bool)
        years = [title_year(title) for title in movies["title"]]
        self.reasons = [
            _reason(segment, raters, positives, genres[segment[-1]], years[segment[-1]])
            for segment, (raters, positives) in zip(distinct.tolist(), counts[first].tolist(), strict=True)
        ]
        # A catalogue position's place in the pool; out of range (an IndexError) for a movie outside it.
        self.pool_index = np.full(len(dataset.movies), len(pool), dtype=np.int32)
        self.pool_index[pool] = np.arange(len(pool))

    def reason_indices(self, age: int, gender: str, occupation: str, movies: np.ndarray) -> np.ndarray:
        """Where in self.reasons the reasons for one person and these pool movies (catalogue positions) are."""
        bucket = int(age_buckets(np.array([age]))[0])
        return self.reason_of[GENDERS.index(gender), bucket, OCCUPATIONS.index(occupation)][self.pool_index[movies]]


def _chosen_segments(
    users: People, gendered: np.ndarray, rated: np.ndarray, positive: np.ndarray, gender: str
) -> tuple[np.ndarray, np.ndarray]:
    """For askers of this gender in each age bucket x occupation (bucket-major) and each movie: the segment of the
    gender's chain a reason speaks of, as (gender, bucket, occupation, movie) with ANY where it does not restrict,
    and that segment's (raters, positives). Users who are not gendered (O) count only where gender is ANY."""
    buckets, occupations = (grid.ravel() for grid in np.meshgrid(np.arange(AGE_BUCKETS), np.arange(len(OCCUPATIONS)),
                                                                 indexing="ij"))  # fmt: skip
    model_gender = MODEL_GENDERS.index(gender) if gender in MODEL_GENDERS else 0  # O's segments ignore gender
    askers = People(BUCKET_AGES[buckets], np.full(len(buckets), model_gender), occupations)
    attributes = {"gender": askers.genders, "age_bucket": buckets, "occupation": occupations}
    chain = SEGMENT_CHAINS[gender]
    shape = (len(buckets), rated.shape[1])
    segments = np.zeros((*shape, len(ATTRIBUTES) + 1), dtype=np.int64)
    segments[..., -1] = np.arange(rated.shape[1])
    counts = np.zeros((*shape, 2), dtype=np.int64)
    # Broadest first: a more specific segment replaces it where it has enough raters.
    for level in reversed(range(len(chain))):
        segmentation, codes = chain[level], askers.segment_codes(chain[level])
        counted = gendered[:, None] if "gender" in segmentation else True
        totals = [segment_totals(users, segmentation, outcome * counted)[0][codes] for outcome in (rated, positive)]
        level_counts = np.stack(totals, axis=-1)
        take = (level_counts[..., 0] >= MIN_RATERS) | (level == len(chain) - 1)
        who = np.column_stack([attributes[name] if name in segmentation else np.full(len(buckets), ANY)
                               for name in ATTRIBUTES])  # fmt: skip
        segments[..., :-1][take] = np.broadcast_to(who[:, None, :], (*shape, len(ATTRIBUTES)))[take]
        counts[take] = level_counts[take]
    return segments, counts


def title_year(title: str) -> int | None:
    """The year a title ends with, "Return of the Jedi (1983)": the film's, where u.item's date is a re-release's."""
    found = re.search(r"\((\d{4})\)\s*$", title)
    return int(found.group(1)) if found else None


def _reason(segment: list[int], raters: int, positives: int, genres: np.ndarray, year: int | None) -> dict:
    """A reason as /api/recommend answers it."""
    who = segment_label(*segment[:-1])
    share = positives / raters if raters else 0.0  # a pool movie no one rated: only in small data sets
    return {
        "text": f"{share:.0%} of the {raters} {who} who rated it gave it {RELEVANT_RATING} or 5."
        if raters
        else "None of the people the model learnt from rated it.",
        "segment": who,
        "raters": raters,
        "positive_share": round(share, 4),
        "genres": [name for name, present in zip(GENRES, genres, strict=True) if present],
        "year": year,
    }
