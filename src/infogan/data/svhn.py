"""SVHN (cropped digits, 32x32 RGB) from its MATLAB files, found like the IDX data sets or
downloaded into the cache, and checked on load (variables, shapes, types, label range, count)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import scipy.io
import torch

from ..errors import InfoGANError
from .idx import read_bytes
from .sources import DOWNLOAD_SLACK, cache_dir, fetch_verified, find_file, missing_message, search_roots

NAME = "svhn"
FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}
COUNTS = {"train": 73257, "test": 26032, "extra": 531131}
MIRRORS = ("http://ufldl.stanford.edu/housenumbers/",)
IMAGE_BYTES = 32 * 32 * 3


def max_file_bytes(split: str) -> int:
    """The most bytes an SVHN file of `split` may hold: its pixels and labels, headroom for the
    file's own headers and zlib's overhead."""
    return COUNTS[split] * (IMAGE_BYTES + 8) * 101 // 100 + DOWNLOAD_SLACK


def parse_mat(payload: bytes, split: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,) with digit 0 as 0) from SVHN's .mat."""
    if payload.startswith(b"MATLAB 7.3"):  # HDF5-based; scipy does not read these
        raise InfoGANError(f"{source} is a MATLAB 7.3 file; SVHN's files are version 5: download them again")
    try:
        data = scipy.io.loadmat(io.BytesIO(payload))
    except (scipy.io.matlab.MatReadError, ValueError, OSError, TypeError) as exc:
        raise InfoGANError(f"{source} is not a readable MATLAB file ({exc}); download it again") from None
    images, labels = data.get("X"), data.get("y")
    if not isinstance(images, np.ndarray) or not isinstance(labels, np.ndarray):
        raise InfoGANError(f"{source} lacks the variables X and y of SVHN's cropped-digit files")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise InfoGANError(f"{source}: X has shape {images.shape} ({images.dtype}); SVHN's is 32x32x3xN uint8")
    labels = labels.reshape(-1).astype(np.int64)
    if len(labels) != images.shape[3] or labels.min(initial=1) < 1 or labels.max(initial=1) > 10:
        raise InfoGANError(f"{source}: y must hold one label from 1 to 10 per image")
    if images.shape[3] != COUNTS[split]:
        raise InfoGANError(
            f"{source} holds {images.shape[3]} images; SVHN's {split} split has {COUNTS[split]}. "
            "It is incomplete or another file: download it again"
        )
    return np.ascontiguousarray(images.transpose(3, 2, 0, 1)), labels % 10


def load_svhn(
    split: str = "train", data_dir: str | Path | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 3, 32, 32), labels (N,)) of one SVHN split."""
    if split not in FILES:
        raise InfoGANError(f"unknown SVHN split {split!r}; choose {', '.join(FILES)}")
    filename = FILES[split]
    roots = search_roots(data_dir)
    path = find_file(NAME, filename, roots)
    if path is None and download:

        def check(payload: bytes) -> str | None:
            try:
                parse_mat(payload, split, filename)
            except InfoGANError as exc:
                return str(exc)
            return None

        try:
            urls = [mirror + filename for mirror in MIRRORS]
            target = cache_dir() / NAME / filename
            path = fetch_verified(urls, target, check, f"{filename} of SVHN", max_file_bytes(split))
        except InfoGANError as exc:
            raise InfoGANError(f"{missing_message(NAME, filename, data_dir)}\n{exc}") from None
    if path is None:
        raise InfoGANError(missing_message(NAME, filename, data_dir))
    payload = read_bytes(path, max_file_bytes(split), f"SVHN {split}")
    images, labels = parse_mat(payload, split, str(path))
    return torch.from_numpy(images), torch.from_numpy(labels)
