"""The one door from the web to the model: load model.pkl, recommend titles (no Flask)."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import joblib
import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from app.model.data import GENDERS, OCCUPATIONS, RELEVANT_RATING
from app.model.features import People
from app.model.forest import MAX_AGE, MAX_RECS, MIN_AGE, RelevanceForest
from app.model.model_file import METADATA_FILE_NAME, MODEL_FILE_NAME, ModelFileError, checked_metadata, read_model_file

__all__ = ["JSON_SEPARATORS", "METADATA_FILE_NAME", "MODEL_FILE_NAME", "ModelFileError", "Recommender"]

JSON_SEPARATORS = (",", ":")  # compact, as Flask answers


class Recommender:
    """A loaded model and its version (the SHA-256 of its model.pkl).

    Without rated (the titles a person has scored), an answer is a lookup. With them, a model made with warm
    start re-ranks its pool for the person (app.model.warm); a model made before warm start answers its cold list.
    Either way, no rated title is recommended.
    """

    def __init__(self, estimator: RelevanceForest, version: str, metadata: dict | None = None) -> None:
        self.estimator = estimator
        self.version = version
        self.metadata = metadata
        # Every person's titles, best first, and where their reasons are (app.reasons; each also serialized once
        # here, for the web): answering is one dictionary lookup and a slice.
        self._reasons = estimator.reasons_.reasons
        self._reasons_json = [
            json.dumps(reason, sort_keys=True, separators=JSON_SEPARATORS) for reason in self._reasons
        ]
        self.positions = {title: position for position, title in enumerate(estimator.titles_.tolist())}
        self.warm_start = hasattr(estimator, "warm_")
        self._titles, self._reason_indices = {}, {}
        for person in itertools.product(range(MIN_AGE, MAX_AGE + 1), GENDERS, OCCUPATIONS):
            ranking = estimator.ranking(*person)
            self._titles[person] = tuple(estimator.titles_[ranking].tolist())
            self._reason_indices[person] = estimator.reasons_.reason_indices(*person, ranking)
        # The same lists as catalogue positions, to take a person's rated titles out of (a view of the model's).
        self._titles_by_position = {person: estimator.ranking(*person) for person in self._titles}

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model.pkl, or a .tar.gz holding one model.pkl (and optionally its model.json).

        When a model.json comes with it (beside the .pkl, or in the archive), the
        model's SHA-256 must match the one recorded there.
        """
        path = Path(path)
        return cls.from_bytes(*read_model_file(path), path)

    @classmethod
    def from_bytes(cls, model_bytes: bytes, metadata: bytes | None, path: Path) -> Recommender:
        """A model.pkl's bytes (and its model.json's) read from path, loaded: as load(), for bytes already read."""
        version = hashlib.sha256(model_bytes).hexdigest()
        recorded = None if metadata is None else checked_metadata(path, version, metadata)
        try:
            estimator = joblib.load(io.BytesIO(model_bytes))
        except (AttributeError, ModuleNotFoundError) as error:  # a class this code no longer has where it was
            raise ModelFileError(
                f"{path}: made by another version of this code ({error}); train it again with python -m app.train"
            ) from error
        except Exception as error:  # unpickling can raise anything a corrupt file provokes
            raise ModelFileError(f"{path}: not a readable model ({type(error).__name__}: {error})") from error
        if not isinstance(estimator, RelevanceForest):
            raise ModelFileError(f"{path}: holds a {type(estimator).__name__}, not a RelevanceForest")
        try:
            check_is_fitted(estimator, "rankings_")
        except NotFittedError as error:
            raise ModelFileError(f"{path}: the model is not fitted") from error
        if not hasattr(estimator, "reasons_"):
            raise ModelFileError(f"{path}: the model predates reasons; train it again with python -m app.train")
        return cls(estimator, version, recorded)

    def library_mismatches(self) -> list[str]:
        """The libraries whose version here differs from the one model.json says the model was made with."""
        mismatches = []
        for name, made_with in (self.metadata or {}).get("libraries", {}).items():
            try:
                here = version(name)
            except PackageNotFoundError:  # "python", or a library this service does not use
                continue
            if here != made_with:
                mismatches.append(f"{name} {made_with} (model) against {here} (here)")
        return mismatches

    def recommend(
        self, age: int, gender: str, occupation: str, max_recs: int = 10, rated: Mapping[str, float] | None = None
    ) -> list[str]:
        """The titles /api/recommend answers for this person (who gave rated[title] to each title of rated), best
        first, each once."""
        if not rated:
            return list(self._answer(self._titles, age, gender, occupation, max_recs))
        return self._rated_answer(age, gender, occupation, max_recs, rated)[0]

    def recommend_with_reasons_json(
        self, age: int, gender: str, occupation: str, max_recs: int = 10, rated: Mapping[str, float] | None = None
    ) -> tuple[list[str], str]:
        """recommend() and reasons_json() at once: with rated, the person's ranking is computed once."""
        if not rated:
            person = (age, gender, occupation, max_recs)
            return self.recommend(*person), self.reasons_json(*person)
        titles, reasons = self._rated_answer(age, gender, occupation, max_recs, rated)
        return titles, json.dumps(reasons, separators=JSON_SEPARATORS)

    def reasons(
        self, age: int, gender: str, occupation: str, max_recs: int = 10, rated: Mapping[str, float] | None = None
    ) -> list[dict]:
        """Why each of recommend()'s titles, in its order (app.reasons, app.model.warm_reasons); the dicts may be
        shared: do not change them."""
        if not rated:
            indices = self._answer(self._reason_indices, age, gender, occupation, max_recs)
            return [self._reasons[index] for index in indices.tolist()]
        return self._rated_answer(age, gender, occupation, max_recs, rated)[1]

    def reasons_json(
        self, age: int, gender: str, occupation: str, max_recs: int = 10, rated: Mapping[str, float] | None = None
    ) -> str:
        """reasons() as a JSON array."""
        if not rated:
            indices = self._answer(self._reason_indices, age, gender, occupation, max_recs)
            return f"[{','.join([self._reasons_json[index] for index in indices.tolist()])}]"
        return self.recommend_with_reasons_json(age, gender, occupation, max_recs, rated)[1]

    def _rated_answer(
        self, age: int, gender: str, occupation: str, max_recs: int, rated: Mapping[str, float]
    ) -> tuple[list[str], list[dict]]:
        """The titles and their reasons for a person who scored the titles of rated."""
        self._answer(self._titles_by_position, age, gender, occupation, max_recs)  # refuses what recommend() does
        ranking = self._titles_by_position[(age, gender, occupation)]
        unknown = [title for title in rated if title not in self.positions]
        if unknown or not all(1 <= score <= 5 for score in rated.values()):
            raise ValueError(f"rated: {unknown[0]!r} is not a title of the catalogue" if unknown else
                             "rated: a score is between 1 and 5")  # fmt: skip
        positions = np.array([self.positions[title] for title in rated], dtype=np.int64)
        if self.warm_start:
            ranking = self._warm_ranking(age, gender, occupation, positions, np.array(list(rated.values())))
        chosen = ranking[~np.isin(ranking, positions)][:max_recs]
        cold = self.estimator.reasons_.reason_indices(age, gender, occupation, chosen)
        reasons = [self._reasons[index] for index in cold.tolist()]
        if self.warm_start:
            liked = [
                (self.positions[title], score, title) for title, score in rated.items() if score >= RELEVANT_RATING
            ]
            pool_indices = self.estimator.reasons_.pool_index[chosen].tolist()
            warm = [self.estimator.co_likes_.reason(index, liked) for index in pool_indices]
            reasons = [from_scores or reason for from_scores, reason in zip(warm, reasons, strict=True)]
        return self.estimator.titles_[chosen].tolist(), reasons

    def _warm_ranking(self, age: int, gender: str, occupation: str, positions: np.ndarray, scores: np.ndarray):
        """The pool, best first for this person and these scores (the rated titles still in it)."""
        person = People(np.array([age]), np.array([GENDERS.index(gender)]), np.array([OCCUPATIONS.index(occupation)]))
        relevance = self.estimator.warm_relevance(person, positions, scores[None, :].astype(np.float32))[0]
        return self.estimator.pool_[np.argsort(-relevance, kind="stable")]

    @staticmethod
    def _answer(table: dict, age: int, gender: str, occupation: str, max_recs: int) -> tuple | np.ndarray:
        answer = table.get((age, gender, occupation))
        if answer is None or not 1 <= max_recs <= MAX_RECS:
            raise ValueError(_what_is_wrong(age, gender, occupation, max_recs))
        return answer[:max_recs]


def _what_is_wrong(age: int, gender: str, occupation: str, max_recs: int) -> str:
    if not (isinstance(age, int) and MIN_AGE <= age <= MAX_AGE):
        return f"age must be between {MIN_AGE} and {MAX_AGE}"
    if gender not in GENDERS:
        return f"gender must be one of {', '.join(GENDERS)}"
    if occupation not in OCCUPATIONS:
        return f"occupation must be one of {', '.join(OCCUPATIONS)}"
    return f"max_recs must be between 1 and {MAX_RECS}"
