from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from app.model.data import CHECKSUMS, DataError, fetch, load_dataset
from tests.conftest import (
    ACCENTED_TITLE,
    DUPLICATE_MOVIE_ID,
    ORIGINAL_MOVIE_ID,
    SYNTHETIC_MOVIES,
    SYNTHETIC_USERS,
    write_synthetic_ml100k,
)


def zip_directory(source: Path, archive: Path, folder: str = "ml-100k") -> Path:
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(source.iterdir()):
            bundle.write(path, f"{folder}/{path.name}")
    return archive


def leftovers(parent: Path) -> list[str]:
    return sorted(path.name for path in parent.iterdir())


def test_load_reads_users_movies_and_ratings(synthetic_data_dir: Path) -> None:
    dataset = load_dataset(synthetic_data_dir)
    assert len(dataset.users) == SYNTHETIC_USERS
    assert set(dataset.users.columns) == {"age", "gender", "occupation"}
    assert dataset.ratings["rating"].between(1, 5).all()


def test_load_decodes_titles_from_latin1(synthetic_data_dir: Path) -> None:
    assert ACCENTED_TITLE in load_dataset(synthetic_data_dir).movies["title"].tolist()


def test_load_merges_a_title_listed_under_two_ids(synthetic_data_dir: Path) -> None:
    dataset = load_dataset(synthetic_data_dir)
    assert len(dataset.movies) == SYNTHETIC_MOVIES - 1
    assert dataset.movies["title"].is_unique
    assert DUPLICATE_MOVIE_ID not in dataset.movies.index
    assert not dataset.ratings["movie_id"].eq(DUPLICATE_MOVIE_ID).any()
    assert not dataset.ratings.duplicated(["user_id", "movie_id"]).any()


def test_load_keeps_the_latest_rating_of_a_merged_title(synthetic_data_dir: Path) -> None:
    ratings = load_dataset(synthetic_data_dir).ratings
    mine = ratings[(ratings["user_id"] == 1) & (ratings["movie_id"] == ORIGINAL_MOVIE_ID)]
    assert mine["rating"].tolist() == [2]


def test_load_accepts_a_subset_of_users(tmp_path: Path, synthetic_data_dir: Path) -> None:
    subset = shutil.copytree(synthetic_data_dir, tmp_path / "subset")
    lines = (subset / "u.user").read_text(encoding="latin-1").splitlines()[:10]
    (subset / "u.user").write_text("\n".join(lines) + "\n", encoding="latin-1")
    dataset = load_dataset(subset)
    assert len(dataset.users) == 10
    assert set(dataset.ratings["user_id"]) <= set(dataset.users.index)


def test_load_names_the_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no u.data, u.item, u.user"):
        load_dataset(tmp_path)


def test_load_rejects_a_file_in_another_format(tmp_path: Path, synthetic_data_dir: Path) -> None:
    broken = shutil.copytree(synthetic_data_dir, tmp_path / "broken")
    (broken / "u.data").write_text("not\ta\trating\tat all\n")
    with pytest.raises(DataError, match="not in the ml-100k format"):
        load_dataset(broken)


@pytest.mark.dataset
def test_fetch_downloads_verifies_and_installs(http_server: tuple[str, Path], real_data_dir: Path, tmp_path: Path):
    url, served = http_server
    zip_directory(real_data_dir, served / "ml-100k.zip")
    dest = tmp_path / "data" / "ml-100k"
    fetch(f"{url}/ml-100k.zip", dest)
    assert sorted(path.name for path in dest.iterdir()) == sorted([*CHECKSUMS, "README"])
    assert leftovers(dest.parent) == ["ml-100k"]
    assert len(load_dataset(dest).ratings) > 99_000


@pytest.mark.dataset
def test_fetch_takes_a_local_zip_or_directory(real_data_dir: Path, tmp_path: Path) -> None:
    fetch(str(zip_directory(real_data_dir, tmp_path / "copy.zip")), tmp_path / "from-zip")
    fetch(str(real_data_dir), tmp_path / "from-dir")
    assert sorted(path.name for path in (tmp_path / "from-zip").iterdir()) == sorted([*CHECKSUMS, "README"])
    assert sorted(path.name for path in (tmp_path / "from-dir").iterdir()) == sorted([*CHECKSUMS, "README"])


def test_fetch_refuses_files_that_fail_their_checksum(http_server: tuple[str, Path], tmp_path: Path) -> None:
    url, served = http_server
    zip_directory(write_synthetic_ml100k(tmp_path / "fake"), served / "ml-100k.zip")
    dest = tmp_path / "data" / "ml-100k"
    with pytest.raises(DataError, match="does not match its SHA-256 checksum"):
        fetch(f"{url}/ml-100k.zip", dest)
    assert leftovers(dest.parent) == []


def test_fetch_refuses_a_corrupt_download_and_leaves_nothing(
    http_server: tuple[str, Path], synthetic_data_dir: Path, tmp_path: Path
) -> None:
    url, served = http_server
    whole = zip_directory(synthetic_data_dir, tmp_path / "whole.zip").read_bytes()
    (served / "ml-100k.zip").write_bytes(whole[: len(whole) // 2])
    dest = tmp_path / "data" / "ml-100k"
    with pytest.raises(DataError, match="not a readable zip archive"):
        fetch(f"{url}/ml-100k.zip", dest)
    assert leftovers(dest.parent) == []


def test_fetch_says_when_the_download_fails(http_server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = http_server
    with pytest.raises(DataError, match="cannot download .*404"):
        fetch(f"{url}/missing.zip", tmp_path / "ml-100k")


@pytest.mark.dataset
def test_a_failed_fetch_keeps_the_copy_already_there(real_data_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "ml-100k"
    fetch(str(real_data_dir), dest)
    with pytest.raises(DataError):
        fetch(str(write_synthetic_ml100k(tmp_path / "fake")), dest)
    assert len(load_dataset(dest).ratings) > 99_000
    assert leftovers(tmp_path) == ["fake", "ml-100k"]


def test_fetch_command_prints_one_error_line_and_fails(tmp_path: Path) -> None:
    source, dest = tmp_path / "nothing.zip", tmp_path / "ml-100k"
    result = subprocess.run(
        [sys.executable, "-m", "app.data", "fetch", "--source", str(source), "--dest", str(dest)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot download")
    assert "Traceback" not in result.stderr
