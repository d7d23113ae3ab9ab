"""A candidate's files on a replica's disk: signed by `start`, written by publication, checked by every worker.

The database holds the candidate's bytes, so write access to it must not be enough to run code in the workers:
`start` signs the bytes with an HMAC whose key is derived from JWT_SECRET_KEY, which the database never holds,
and a worker unpickles only bytes whose signature is right and whose SHA-256 is the published version.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from app.experiment.durable_files import write_directory
from app.model.model_file import METADATA_FILE_NAME, MODEL_FILE_NAME, ModelFileError
from app.model.recommender import Recommender

CANDIDATES = "candidates"
# What the key signs, so that a key derived from JWT_SECRET_KEY signs nothing a token could be mistaken for.
SIGNING_PURPOSE = b"app.experiment: a candidate model's files"


class CandidateRefused(Exception):
    """The candidate's files on disk cannot be served; the message says why."""


def signing_key(jwt_secret_key: str) -> bytes:
    return hmac.new(jwt_secret_key.encode(), SIGNING_PURPOSE, hashlib.sha256).digest()


def signature(key: bytes, model: bytes, metadata: bytes) -> str:
    """The HMAC-SHA256 of model.pkl's and model.json's bytes, each preceded by its length."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for content in (model, metadata):
        mac.update(len(content).to_bytes(8, "big"))
        mac.update(content)
    return mac.hexdigest()


def candidate_path(directory: Path, version: str) -> Path:
    return directory / CANDIDATES / version / MODEL_FILE_NAME


def load_candidate(directory: Path, version: str, signed: str | None, key: bytes) -> Recommender:
    """The published candidate, once its bytes are those that `start` signed and its SHA-256 is version."""
    model_path = candidate_path(directory, version)
    try:
        model = model_path.read_bytes()
        metadata = model_path.with_name(METADATA_FILE_NAME).read_bytes()
    except OSError as error:
        raise CandidateRefused(f"cannot read {error.filename}: {error.strerror}") from error
    if hashlib.sha256(model).hexdigest() != version:
        raise CandidateRefused(f"{model_path}: its SHA-256 is not the published version {version[:12]}")
    if signed is None or not hmac.compare_digest(signature(key, model, metadata).encode(), signed.encode()):
        raise CandidateRefused(
            f"{model_path}: its signature is {'missing' if signed is None else 'wrong'}: `start` did not sign "
            "these bytes with this service's JWT_SECRET_KEY"
        )
    try:
        return Recommender.from_bytes(model, metadata, model_path)
    except ModelFileError as error:
        raise CandidateRefused(str(error)) from error


# The candidate files this process wrote or checked whole, by (inode, size, mtime): each is hashed once, not at
# every publication.
_checked: dict[Path, tuple[int, int, int]] = {}


def is_whole(directory: Path, version: str) -> bool:
    """Whether the candidate's model.pkl is there and its SHA-256 is its version (a power cut can tear it)."""
    path = candidate_path(directory, version)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return False
    seen = (status.st_ino, status.st_size, status.st_mtime_ns)
    if _checked.get(path) == seen:
        return True
    with path.open("rb") as model_file:
        whole = hashlib.file_digest(model_file, "sha256").hexdigest() == version
    if whole:
        _checked[path] = seen
    return whole


def write_candidate(directory: Path, version: str, model: bytes, metadata: str | None) -> bool:
    """Write the candidate's files as the database holds them (the workers check them); False, writing nothing,
    when its model.pkl's SHA-256 is not its version (a row changed since `start`: no worker would take it)."""
    if hashlib.sha256(model).hexdigest() != version:
        return False
    files = {MODEL_FILE_NAME: model}
    if metadata is not None:
        files[METADATA_FILE_NAME] = metadata.encode()
    write_directory(directory / CANDIDATES, version, files)
    return True
