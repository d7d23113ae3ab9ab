"""The one door from the web to the model: load model.pkl, recommend titles (no Flask)."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import joblib
import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from app.model.data import GENDERS, OCCUPATIONS
from app.model.forest import MAX_AGE, MAX_RECS, MIN_AGE, RelevanceForest
from app.model.model_file import METADATA_FILE_NAME, MODEL_FILE_NAME, ModelFileError, checked_metadata, read_model_file

__all__ = ["JSON_SEPARATORS", "METADATA_FILE_NAME", "MODEL_FILE_NAME", "ModelFileError", "Recommender"]

JSON_SEPARATORS = (",", ":")  # compact, as Flask answers


class Recommender:
    """A loaded model and its version (the SHA-256 of its model.pkl)."""

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
        self._titles, self._reason_indices = {}, {}
        for person in itertools.product(range(MIN_AGE, MAX_AGE + 1), GENDERS, OCCUPATIONS):
            ranking = estimator.ranking(*person)
            self._titles[person] = tuple(estimator.titles_[ranking].tolist())
            self._reason_indices[person] = estimator.reasons_.reason_indices(*person, ranking)

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

    def recommend(self, age: int, gender: str, occupation: str, max_recs: int = 10) -> list[str]:
        """The titles /api/recommend answers for this person, best first, each once."""
        return list(self._answer(self._titles, age, gender, occupation, max_recs))

    def reasons(self, age: int, gender: str, occupation: str, max_recs: int = 10) -> list[dict]:
        """Why each of recommend()'s titles, in its order (app.reasons); the dicts are shared: do not change them."""
        indices = self._answer(self._reason_indices, age, gender, occupation, max_recs)
        return [self._reasons[index] for index in indices.tolist()]

    def reasons_json(self, age: int, gender: str, occupation: str, max_recs: int = 10) -> str:
        """reasons() as a JSON array."""
        indices = self._answer(self._reason_indices, age, gender, occupation, max_recs)
        return f"[{','.join([self._reasons_json[index] for index in indices.tolist()])}]"

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
