"""Model files: a model.pkl (with its model.json beside it), or a .tar.gz holding them (no Flask).

python -m app.model.model_file install SOURCE DEST_DIR
    puts SOURCE (a model.pkl, a .tar.gz, or a directory holding one of them) into
    DEST_DIR as model.pkl (and model.json), reading an archive without trusting its paths.

A model.pkl may be a link (deploy/swap-model serves each version from its own directory and
switches one link): it is resolved once, and model.pkl and model.json are both opened in the
directory it leads to before either is read. A reader therefore gets one version's pair, never
one file of each, as long as that directory stays whole while the two files are being opened
(swap-model keeps the version it replaces).
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from contextlib import nullcontext
from pathlib import Path

MODEL_FILE_NAME = "model.pkl"
METADATA_FILE_NAME = "model.json"


class ModelFileError(Exception):
    """The model file cannot be served; the message says why."""


def read_model_file(path: Path) -> tuple[bytes, bytes | None]:
    """The model's bytes and its model.json's (None when it has none)."""
    if path.name.endswith(".tar.gz"):
        return _read_archive(path)
    if path.suffix == ".pkl":
        return _read_pair(path)
    raise ModelFileError(f"{path}: a model file is a .pkl or a .tar.gz holding one {MODEL_FILE_NAME}")


def install(source: Path, dest_dir: Path) -> Path:
    """Write the model file at source (or the one file in a directory) into dest_dir; its new path."""
    if source.is_dir():
        found = sorted(path for path in source.iterdir() if path.is_file())
        if len(found) != 1:
            raise ModelFileError(f"{source} must hold exactly one model file, not {[path.name for path in found]}")
        source = found[0]
    model_bytes, metadata = read_model_file(source)
    dest_dir.mkdir(parents=True, exist_ok=True)
    (dest_dir / MODEL_FILE_NAME).write_bytes(model_bytes)
    if metadata is not None:
        (dest_dir / METADATA_FILE_NAME).write_bytes(metadata)
    return dest_dir / MODEL_FILE_NAME


def _read_pair(path: Path) -> tuple[bytes, bytes | None]:
    """model.pkl and the model.json beside the file it resolves to (the module docstring says why)."""
    resolved = path.resolve()
    metadata_path = resolved.with_name(METADATA_FILE_NAME)
    try:
        with (
            resolved.open("rb") as model_file,
            metadata_path.open("rb") if metadata_path.is_file() else nullcontext() as metadata_file,
        ):
            return model_file.read(), None if metadata_file is None else metadata_file.read()
    except OSError as error:
        raise ModelFileError(f"cannot read {error.filename}: {error.strerror}") from error


def _read_archive(path: Path) -> tuple[bytes, bytes | None]:
    """model.pkl (required) and model.json (optional) from a .tar.gz that holds nothing else."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = [member for member in archive.getmembers() if not member.isdir()]
            names = sorted(member.name for member in members)
            allowed = {MODEL_FILE_NAME, METADATA_FILE_NAME}
            if MODEL_FILE_NAME not in names or not set(names) <= allowed or len(set(names)) != len(names):
                raise ModelFileError(
                    f"{path}: the archive must hold one {MODEL_FILE_NAME} (and optionally {METADATA_FILE_NAME}) "
                    f"at its top, not {names or 'nothing'}"
                )
            contents = {}
            for member in members:
                if not member.isfile():
                    raise ModelFileError(f"{path}: {member.name} in the archive is not a regular file")
                contents[member.name] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ModelFileError(f"{path}: not a readable .tar.gz ({error})") from error
    return contents[MODEL_FILE_NAME], contents.get(METADATA_FILE_NAME)


def checked_metadata(path: Path, version: str, metadata: bytes) -> dict:
    """The parsed model.json, once the model's SHA-256 is the one it records."""
    try:
        parsed = json.loads(metadata)
        recorded = str(parsed["model_sha256"])
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFileError(f"{path}: its {METADATA_FILE_NAME} is not valid model metadata") from error
    if recorded != version:
        raise ModelFileError(
            f"{path}: SHA-256 {version[:12]} does not match {recorded[:12]} recorded in {METADATA_FILE_NAME}"
        )
    return parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.model.model_file", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    install_parser = commands.add_parser("install", help="put a model file into a directory as model.pkl")
    install_parser.add_argument("source", type=Path)
    install_parser.add_argument("dest_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        print(f"installed {install(args.source, args.dest_dir)}")
    except ModelFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
