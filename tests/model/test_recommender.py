from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import pytest

from app.model.data import GENDERS, OCCUPATIONS, sha256_of
from app.model.recommender import METADATA_FILE_NAME, MODEL_FILE_NAME, ModelFileError, Recommender
from tests.conftest import ACCENTED_TITLE


def make_archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture(scope="module")
def recommender(real_model_dir: Path) -> Recommender:
    return Recommender.load(real_model_dir / MODEL_FILE_NAME)


@pytest.mark.dataset
@pytest.mark.parametrize("gender", GENDERS)
@pytest.mark.parametrize("age", [1, 120])
def test_every_person_gets_ten_distinct_titles(recommender: Recommender, gender: str, age: int) -> None:
    for occupation in OCCUPATIONS:
        titles = recommender.recommend(age, gender, occupation)
        assert len(titles) == 10
        assert len(set(titles)) == 10


@pytest.mark.dataset
@pytest.mark.parametrize("max_recs", [1, 37, 100])
def test_max_recs_bounds_the_list(recommender: Recommender, max_recs: int) -> None:
    titles = recommender.recommend(28, "F", "librarian", max_recs=max_recs)
    assert len(titles) == max_recs
    assert len(set(titles)) == max_recs


@pytest.mark.dataset
def test_a_shorter_list_is_the_start_of_a_longer_one(recommender: Recommender) -> None:
    assert recommender.recommend(45, "O", "retired", 5) == recommender.recommend(45, "O", "retired", 50)[:5]


@pytest.mark.dataset
def test_different_people_get_different_lists(recommender: Recommender) -> None:
    lists = {tuple(recommender.recommend(age, "M", occupation)) for age in (15, 40, 70) for occupation in OCCUPATIONS}
    assert len(lists) > 10


@pytest.mark.dataset
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((0, "M", "writer", 10), "age"),
        ((121, "M", "writer", 10), "age"),
        ((30, "X", "writer", 10), "gender"),
        ((30, "M", "astronaut", 10), "occupation"),
        ((30, "M", "writer", 0), "max_recs"),
        ((30, "M", "writer", 101), "max_recs"),
    ],
)
def test_recommend_refuses_arguments_outside_the_request_space(
    recommender: Recommender, arguments: tuple, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        recommender.recommend(*arguments)


def test_titles_come_decoded_from_latin1(synthetic_model_dir: Path) -> None:
    recommender = Recommender.load(synthetic_model_dir / MODEL_FILE_NAME)
    titles = {title for gender in GENDERS for title in recommender.recommend(30, gender, "writer", 100)}
    assert ACCENTED_TITLE in titles


def test_the_version_is_the_sha256_of_model_pkl(synthetic_model_dir: Path) -> None:
    path = synthetic_model_dir / MODEL_FILE_NAME
    assert Recommender.load(path).version == sha256_of(path)


def test_load_takes_a_tar_gz_with_one_model_pkl(synthetic_model_dir: Path, tmp_path: Path) -> None:
    model_bytes = (synthetic_model_dir / MODEL_FILE_NAME).read_bytes()
    metadata = (synthetic_model_dir / METADATA_FILE_NAME).read_bytes()
    alone = make_archive(tmp_path / "alone.tar.gz", {MODEL_FILE_NAME: model_bytes})
    with_metadata = make_archive(tmp_path / "both.tar.gz", {MODEL_FILE_NAME: model_bytes, METADATA_FILE_NAME: metadata})
    expected = Recommender.load(synthetic_model_dir / MODEL_FILE_NAME).recommend(30, "F", "artist")
    assert Recommender.load(alone).recommend(30, "F", "artist") == expected
    assert Recommender.load(with_metadata).recommend(30, "F", "artist") == expected


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({}, "must hold one model.pkl"),
        ({"other.pkl": b"x"}, "must hold one model.pkl"),
        ({MODEL_FILE_NAME: b"x", "extra.txt": b"y"}, "must hold one model.pkl"),
        ({"../model.pkl": b"x"}, "must hold one model.pkl"),
        ({"sub/model.pkl": b"x"}, "must hold one model.pkl"),
    ],
)
def test_load_refuses_an_archive_without_exactly_one_model_pkl(tmp_path: Path, members: dict, message: str) -> None:
    with pytest.raises(ModelFileError, match=message):
        Recommender.load(make_archive(tmp_path / "model.tar.gz", members))


def test_load_refuses_an_archive_with_model_pkl_twice(synthetic_model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "twice.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for _ in range(2):
            archive.add(synthetic_model_dir / MODEL_FILE_NAME, arcname=MODEL_FILE_NAME)
    with pytest.raises(ModelFileError, match="must hold one model.pkl"):
        Recommender.load(path)


def test_load_refuses_a_link_in_the_archive(tmp_path: Path) -> None:
    path = tmp_path / "link.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(MODEL_FILE_NAME)
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        archive.addfile(info)
    with pytest.raises(ModelFileError, match="not a regular file"):
        Recommender.load(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("model.pkl", pickle.dumps({"not": "a model"}), "holds a dict, not a RelevanceForest"),
        ("model.pkl", b"garbage", "not a readable model"),
        # What a model.pkl made before app/model/ became a package names (app/model.py then held the forest).
        ("model.pkl", b"capp.model\nRelevanceForest\n.", "made by another version of this code .*train it again"),
        ("model.pkl", b"capp.features\nPeople\n.", "made by another version of this code .*train it again"),
        ("model.tar.gz", b"garbage", "not a readable .tar.gz"),
        ("model.joblib", b"", "a model file is a .pkl or a .tar.gz"),
    ],
)
def test_load_refuses_what_is_not_a_model(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        Recommender.load(tmp_path / name)


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot read .*model.pkl: No such file"):
        Recommender.load(tmp_path / MODEL_FILE_NAME)


def test_load_refuses_a_model_that_does_not_match_its_metadata(synthetic_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / MODEL_FILE_NAME).write_bytes((synthetic_model_dir / MODEL_FILE_NAME).read_bytes())
    (tmp_path / METADATA_FILE_NAME).write_text(json.dumps({"model_sha256": "0" * 64}))
    with pytest.raises(ModelFileError, match="does not match 000000000000 recorded in model.json"):
        Recommender.load(tmp_path / MODEL_FILE_NAME)


def test_load_of_a_link_checks_the_model_json_beside_the_file_it_leads_to(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    # deploy/swap-model's layout: the served model.pkl is a link into one version's directory.
    (tmp_path / MODEL_FILE_NAME).symlink_to(synthetic_model_dir / MODEL_FILE_NAME)
    (tmp_path / METADATA_FILE_NAME).write_text(json.dumps({"model_sha256": "0" * 64}))
    loaded = Recommender.load(tmp_path / MODEL_FILE_NAME)
    assert loaded.metadata == json.loads((synthetic_model_dir / METADATA_FILE_NAME).read_text())
