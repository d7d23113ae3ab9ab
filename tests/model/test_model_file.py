from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.model.model_file import METADATA_FILE_NAME, MODEL_FILE_NAME, ModelFileError, install
from tests.model.test_recommender import make_archive


def test_install_copies_a_pkl_and_its_metadata(synthetic_model_dir: Path, tmp_path: Path) -> None:
    installed = install(synthetic_model_dir / MODEL_FILE_NAME, tmp_path / "model")
    assert installed.read_bytes() == (synthetic_model_dir / MODEL_FILE_NAME).read_bytes()
    assert (tmp_path / "model" / METADATA_FILE_NAME).is_file()


def test_install_unpacks_the_one_file_of_a_directory(synthetic_model_dir: Path, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    content = (synthetic_model_dir / MODEL_FILE_NAME).read_bytes()
    make_archive(incoming / "anything.tar.gz", {MODEL_FILE_NAME: content})
    assert install(incoming, tmp_path / "model").read_bytes() == content


def test_install_refuses_an_archive_that_climbs_out(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "evil.tar.gz", {"../model.pkl": b"x"})
    with pytest.raises(ModelFileError, match="must hold one model.pkl"):
        install(archive, tmp_path / "model")
    assert not (tmp_path / "model.pkl").exists()
    assert not (tmp_path / "model").exists()


def test_install_command_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.model.model_file", "install", str(tmp_path / "none.pkl"), str(tmp_path / "m")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot read")
    assert len(result.stderr.strip().splitlines()) == 1
