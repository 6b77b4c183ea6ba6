"""Where the IDX data sets live: known files and checksums, lookup order, verified download.

Lookup order for a data set NAME: an explicit data directory, then $INFOGAN_DATA_DIR, then the
user cache (`$XDG_CACHE_HOME/infogan` or `~/.cache/infogan`), then /usr/share/datasets. In each
root the files may sit in `ROOT/NAME/` or directly in `ROOT/`, gzip-compressed or not.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infogan.errors import InfoGANError
from infogan.fileio import write_bytes_atomically

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# The shape of each standard file (MNIST and Fashion-MNIST share them): a file that is to match a
# known SHA-256 must have this shape, which is checked in its header before the body is read.
IDX_SHAPES = {
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}
FILE_TITLES = {
    "train-images-idx3-ubyte": "training images",
    "train-labels-idx1-ubyte": "training labels",
    "t10k-images-idx3-ubyte": "test images",
    "t10k-labels-idx1-ubyte": "test labels",
}
DEBIAN_ROOT = Path("/usr/share/datasets")
DOWNLOAD_SLACK = 1024**2  # bytes a download may exceed the uncompressed file it holds (gzip's overhead)


@dataclass(frozen=True)
class IdxDataset:
    """A data set of four IDX files: SHA-256 of each uncompressed file, and download mirrors."""

    name: str
    sha256: dict[str, str]
    mirrors: tuple[str, ...]


IDX_DATASETS = {
    "mnist": IdxDataset(
        "mnist",
        {
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    "fashion-mnist": IdxDataset(
        "fashion-mnist",
        {
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    ),
}


def idx_size(filename: str) -> int:
    """The uncompressed size in bytes of a standard IDX file: header and body."""
    shape = IDX_SHAPES[filename]
    return 4 + 4 * len(shape) + math.prod(shape)


def known_shape(sha256: str | None) -> tuple[int, ...] | None:
    """The shape of a standard IDX file, found by its SHA-256 (None for any other file)."""
    for dataset in IDX_DATASETS.values():
        for filename, digest in dataset.sha256.items():
            if digest == sha256:
                return IDX_SHAPES[filename]
    return None


DATASET_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def known_file(sha256: str | None) -> tuple[str, str] | None:
    """(data set name, file name) of a standard IDX file, found by its SHA-256."""
    for dataset in IDX_DATASETS.values():
        for filename, digest in dataset.sha256.items():
            if digest == sha256:
                return dataset.name, filename
    return None


def other_file_message(source: str, found: tuple[str, str], wanted: tuple[str, str]) -> str:
    """What to say when `source` is a valid file of a known data set, but not the one wanted:
    what it is, and where the wanted files should come from (never to delete it)."""
    (have, have_file), (want, want_file) = found, wanted
    have_title, want_title = DATASET_TITLES.get(have, have), DATASET_TITLES.get(want, want)
    if have == want:
        return (
            f"{source} is {have_title}'s {FILE_TITLES[have_file]} file, not its {FILE_TITLES[want_file]} file; "
            f"put {want_file} (plain or .gz) in its place"
        )
    return (
        f"{source} is {have_title}'s {FILE_TITLES[have_file]} file, not {want_title}'s; point --data-dir (or "
        f"INFOGAN_DATA_DIR) at the folder holding {want_title}'s files (directly or in {want}/), "
        f"or train on {have_title} instead (--preset {have})"
    )


def cache_dir() -> Path:
    """The per-user cache where downloads go."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "infogan"


RUN_FOLDER = "the run's data folder"
GIVEN_ROOTS = {"--data-dir": "--data-dir ", "INFOGAN_DATA_DIR": "INFOGAN_DATA_DIR=", RUN_FOLDER: "--data-dir "}


class RecordedFolder(str):
    """A data folder recorded with a run (its config's runtime.data_dir): searched first, like
    --data-dir, and named as the run's in messages."""


def data_folder(data_dir: str | Path | None, recorded: str) -> str | Path | None:
    """The folder to search first for a run's data: the one given (it wins), else the one the
    run recorded (None when neither)."""
    if data_dir:
        return data_dir
    return RecordedFolder(recorded) if recorded else None


def labelled_roots(data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """Data roots in lookup order, each with where it comes from."""
    label = RUN_FOLDER if isinstance(data_dir, RecordedFolder) else "--data-dir"
    roots = [(label, Path(data_dir))] if data_dir else []
    if os.environ.get("INFOGAN_DATA_DIR"):
        roots.append(("INFOGAN_DATA_DIR", Path(os.environ["INFOGAN_DATA_DIR"])))
    return [*roots, ("download cache", cache_dir()), ("system data sets", DEBIAN_ROOT)]


def search_roots(data_dir: str | Path | None = None) -> list[Path]:
    """Data roots in lookup order; a folder given by the user that is a file is refused."""
    roots = labelled_roots(data_dir)
    for label, root in roots:
        if label in GIVEN_ROOTS and root.is_file():
            hint = f"{GIVEN_ROOTS[label]}{root.parent}"
            raise InfoGANError(f"{label} {root} is a file, not a folder; give the folder that holds it: {hint}")
    return [root for _, root in roots]


def find_file(name: str, filename: str, roots: Sequence[Path]) -> Path | None:
    """The first existing copy of `filename` (plain or .gz) of data set `name` under `roots`."""
    for root in roots:
        for folder in (root / name, root):
            for candidate in (folder / f"{filename}.gz", folder / filename):
                if candidate.is_file():
                    return candidate
    return None


def fetch_verified(
    urls: Sequence[str], target: Path, check: Callable[[bytes], str | None], what: str, limit: int
) -> Path:
    """Download from the first URL that serves a payload `check` accepts (it returns None, or
    a problem), and write it to `target`. A payload of more than `limit` bytes is refused as soon
    as it passes that size.

    The file is written to a temporary name and renamed only once it is verified: a failed or
    interrupted download never leaves a file that looks complete.
    """
    problems = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                payload = response.read(limit + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problems.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        if len(payload) > limit:
            problems.append(f"{url}: more than {limit} bytes, larger than the file it should be")
            continue
        problem = check(payload)
        if problem:
            problems.append(f"{url}: {problem}")
            continue
        write_bytes_atomically(target, payload)
        return target
    raise InfoGANError(f"could not download {what}:\n  " + "\n  ".join(problems))


def download_file(dataset: IdxDataset, filename: str, target_dir: Path, mirrors: Sequence[str]) -> Path:
    """Fetch `filename`.gz of an IDX data set, verified against its SHA-256."""

    size = idx_size(filename)

    def check(payload: bytes) -> str | None:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(payload), mode="rb") as stream:
                data = stream.read(size + 1)  # never more than one byte past the file it should be
        except (OSError, EOFError, zlib.error) as exc:
            return f"not a gzip file ({exc})"
        if len(data) > size:
            return f"wrong contents (more than the {size} bytes it should hold, uncompressed)"
        if len(data) < size:
            return f"wrong contents ({len(data)} bytes uncompressed, expected {size})"
        digest = hashlib.sha256(data).hexdigest()
        return None if digest == dataset.sha256[filename] else f"wrong contents (SHA-256 {digest[:12]}...)"

    urls = [mirror.rstrip("/") + f"/{filename}.gz" for mirror in mirrors]
    target = target_dir / f"{filename}.gz"
    return fetch_verified(urls, target, check, f"{filename} of {dataset.name}", size + DOWNLOAD_SLACK)


def missing_message(name: str, files: str, data_dir: str | Path | None = None) -> str:
    """What was not found, every folder looked in, what --data-dir and INFOGAN_DATA_DIR were set
    to, and what to do."""
    where = "\n  ".join(f"{root / name}/ and {root}/  ({label})" for label, root in labelled_roots(data_dir))
    env = os.environ.get("INFOGAN_DATA_DIR")
    recorded = isinstance(data_dir, RecordedFolder)
    return (
        f"{name}: {files} was not found. Looked in:\n  {where}\n"
        f"--data-dir: {data_dir if data_dir and not recorded else 'not given'}\n"
        + (f"{RUN_FOLDER} (recorded when it trained): {data_dir}\n" if recorded else "")
        + f"INFOGAN_DATA_DIR: {f'set to {env}' if env else 'not set'}\n"
        f"Put the {name} files (plain or .gz) in one of these folders, or pass --data-dir or set "
        f"INFOGAN_DATA_DIR to a folder that holds them (directly or in {name}/).\n"
        f"With internet access they are downloaded into {cache_dir() / name}/ on first use."
    )


def locate(
    name: str,
    split: str,
    data_dir: str | Path | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> tuple[Path, Path]:
    """Paths of the (images, labels) files of one split, downloading into the cache if needed."""
    if name not in IDX_DATASETS:
        raise InfoGANError(f"unknown data set {name!r}; choose one of {', '.join(IDX_DATASETS)}")
    if split not in SPLIT_FILES:
        raise InfoGANError(f"unknown split {split!r}; choose train or test")
    dataset = IDX_DATASETS[name]
    roots = search_roots(data_dir)
    paths = []
    for filename in SPLIT_FILES[split]:
        found = find_file(name, filename, roots)
        if found is None and download:
            found = _download_or_explain(dataset, filename, data_dir, mirrors)
        if found is None:
            raise InfoGANError(_missing_message(dataset, filename, data_dir))
        paths.append(found)
    return paths[0], paths[1]


def _download_or_explain(
    dataset: IdxDataset, filename: str, data_dir: str | Path | None, mirrors: Sequence[str] | None
) -> Path:
    try:
        return download_file(dataset, filename, cache_dir() / dataset.name, mirrors or dataset.mirrors)
    except InfoGANError as exc:
        raise InfoGANError(f"{_missing_message(dataset, filename, data_dir)}\n{exc}") from None


def _missing_message(dataset: IdxDataset, filename: str, data_dir: str | Path | None) -> str:
    return missing_message(dataset.name, f"{filename}[.gz]", data_dir)
