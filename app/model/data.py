"""MovieLens ml-100k: fetch, verify and load (no Flask).

python -m app.data fetch [--source URL|ZIP|DIR] [--dest data/ml-100k]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

OFFICIAL_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
DEFAULT_DATA_DIR = Path("data/ml-100k")
CHECKSUMS = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
}
# Kept beside the data: it holds the dataset's licence and how to cite it.
EXTRA_FILES = ("README",)
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment",
    "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
    "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
    "writer",
)  # fmt: skip
GENDERS = ("M", "F", "O")
RELEVANT_RATING = 4


class DataError(Exception):
    """The data set could not be fetched or read; the message says why."""


@dataclass(frozen=True)
class Dataset:
    """ml-100k with each title once.

    users: index user_id; columns age, gender, occupation.
    movies: index movie_id (the lowest id of a title); columns title, year and one per genre.
    ratings: columns user_id, movie_id, rating, timestamp; one row per (user, movie).
    """

    users: pd.DataFrame
    movies: pd.DataFrame
    ratings: pd.DataFrame

    def restricted_to(self, user_ids: pd.Index) -> Dataset:
        """The same catalogue with only these users and their ratings."""
        return Dataset(
            users=self.users.loc[user_ids],
            movies=self.movies,
            ratings=self.ratings[self.ratings["user_id"].isin(user_ids)],
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def training_file_checksums(data_dir: Path) -> dict[str, str]:
    """SHA-256 of the files a model is trained from, for its metadata."""
    return {name: sha256_of(data_dir / name) for name in CHECKSUMS}


def load_dataset(data_dir: Path) -> Dataset:
    """Read an ml-100k-format directory (the full set or a subset of users)."""
    missing = [name for name in CHECKSUMS if not (data_dir / name).is_file()]
    if missing:
        raise DataError(f"{data_dir} has no {', '.join(missing)}: run 'python -m app.data fetch' or set ML100K_DIR")
    try:
        users = pd.read_csv(
            data_dir / "u.user", sep="|", header=None, encoding="latin-1",
            names=["user_id", "age", "gender", "occupation", "zip_code"], index_col="user_id",
            dtype={"user_id": "int64", "age": "int64", "gender": str, "occupation": str, "zip_code": str},
        ).drop(columns="zip_code")  # fmt: skip
        items = pd.read_csv(
            data_dir / "u.item", sep="|", header=None, encoding="latin-1",
            names=["movie_id", "title", "release_date", "video_release_date", "url", *GENRES],
            dtype={"movie_id": "int64", "title": str, "release_date": str, **dict.fromkeys(GENRES, "int64")},
        )  # fmt: skip
        ratings = pd.read_csv(
            data_dir / "u.data", sep="\t", header=None, names=["user_id", "movie_id", "rating", "timestamp"],
            dtype="int64",
        )  # fmt: skip
    except (ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{data_dir} is not in the ml-100k format: {error}") from error
    known = ratings["user_id"].isin(users.index) & ratings["movie_id"].isin(items["movie_id"])
    return _merge_duplicate_titles(users, items, ratings[known])


def _merge_duplicate_titles(users: pd.DataFrame, items: pd.DataFrame, ratings: pd.DataFrame) -> Dataset:
    """ml-100k lists a few films twice under two ids: keep the lowest id and the latest rating."""
    canonical_id = items.groupby("title")["movie_id"].transform("min")
    id_map = pd.Series(canonical_id.to_numpy(), index=items["movie_id"])
    ratings = ratings.assign(movie_id=ratings["movie_id"].map(id_map))
    ratings = (
        ratings.sort_values("timestamp", kind="stable")
        .drop_duplicates(["user_id", "movie_id"], keep="last")
        .sort_values(["user_id", "movie_id"])
        .reset_index(drop=True)
    )
    movies = items[items["movie_id"] == canonical_id].set_index("movie_id")
    release = pd.to_datetime(movies["release_date"], format="%d-%b-%Y", errors="coerce")
    movies = movies.assign(year=release.dt.year.fillna(release.dt.year.median()).astype(int))
    return Dataset(users=users, movies=movies[["title", "year", *GENRES]], ratings=ratings)


def fetch(source: str, dest: Path) -> None:
    """Put a verified copy of ml-100k at dest from a URL, a zip file or a directory.

    The files are unpacked into a temporary directory beside dest, checked, and only
    then renamed into place, so a failure leaves dest as it was.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-") as scratch:
        staging = Path(scratch) / "ml-100k"
        staging.mkdir()
        if Path(source).is_dir():
            _copy_directory(Path(source), staging)
        else:
            archive = Path(source) if Path(source).is_file() else _download(source, Path(scratch) / "ml-100k.zip")
            _unpack(archive, staging)
        _verify(staging)
        _replace_directory(staging, dest)


def _download(url: str, target: Path) -> Path:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="ml-100k.zip", file=sys.stderr) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise DataError(f"cannot download {url}: {error}") from error
    return target


def _unpack(archive: Path, staging: Path) -> None:
    """Extract the needed files, whatever folder the archive keeps them in."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = {Path(name).name: name for name in bundle.namelist() if not name.endswith("/")}
            for name in (*CHECKSUMS, *EXTRA_FILES):
                if name in members:
                    with bundle.open(members[name]) as packed, (staging / name).open("wb") as out:
                        shutil.copyfileobj(packed, out)
    except (zipfile.BadZipFile, EOFError, io.UnsupportedOperation, OSError) as error:
        raise DataError(f"{archive.name} is not a readable zip archive ({error}): the download is corrupt") from error


def _copy_directory(source: Path, staging: Path) -> None:
    for name in (*CHECKSUMS, *EXTRA_FILES):
        if (source / name).is_file():
            shutil.copyfile(source / name, staging / name)


def _verify(staging: Path) -> None:
    for name, expected in CHECKSUMS.items():
        path = staging / name
        if not path.is_file():
            raise DataError(f"the source holds no {name}: it is not ml-100k")
        if sha256_of(path) != expected:
            raise DataError(f"{name} does not match its SHA-256 checksum: the source is corrupt or not ml-100k")


def _replace_directory(staging: Path, dest: Path) -> None:
    if dest.exists():
        old = staging.with_name("previous")
        dest.rename(old)
    staging.rename(dest)


def ensure_dataset(data_dir: Path | None) -> Path:
    """The directory to read: the one named (the command's --data-dir, else ML100K_DIR), else data/ml-100k
    (fetched when absent)."""
    if data_dir is not None:
        return data_dir
    if not (DEFAULT_DATA_DIR / "u.data").is_file():
        print(f"ml-100k is not in {DEFAULT_DATA_DIR}: downloading it", file=sys.stderr)
        fetch(OFFICIAL_URL, DEFAULT_DATA_DIR)
    return DEFAULT_DATA_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_parser = commands.add_parser("fetch", help="download and verify ml-100k")
    fetch_parser.add_argument("--source", default=OFFICIAL_URL, help="URL, local zip or local directory")
    fetch_parser.add_argument("--dest", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    try:
        fetch(args.source, args.dest)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"ml-100k is in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
