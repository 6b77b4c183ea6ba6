"""SVHN (cropped digits, 32x32 RGB) from its MATLAB files, found like the IDX data sets or
downloaded into the cache, and checked on load (variables, shapes, types, label range, count).

The files' variables are zlib-compressed, and the reader of MATLAB files inflates each to the
size its own header states. So before anything is loaded, the headers of X and y are read here
(inflating only their first bytes) and their shapes and data sizes checked against SVHN's; and
the file itself (or its gzip) is read only up to the size an SVHN split can have.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from infogan.data.idx import read_bytes
from infogan.data.sources import DOWNLOAD_SLACK, cache_dir, fetch_verified, find_file, missing_message, search_roots
from infogan.errors import InfoGANError

NAME = "svhn"
FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}
COUNTS = {"train": 73257, "test": 26032, "extra": 531131}
MIRRORS = ("http://ufldl.stanford.edu/housenumbers/",)
IMAGE_BYTES = 32 * 32 * 3

# MATLAB 5 data types: the size in bytes of one element of each numeric type
_MI_SIZES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8}
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_MX_NUMERIC = range(6, 16)  # double, single, int8 ... uint64
_MX_UINT8, _MI_UINT8 = 9, 2  # the class of X, and the type its data is stored as
_HEAD_BYTES = 4096  # enough for the tags of a matrix before its data


def max_file_bytes(split: str) -> int:
    """The most bytes an SVHN file of `split` may hold: its pixels and labels, headroom for the
    file's own headers and zlib's overhead."""
    return COUNTS[split] * (IMAGE_BYTES + 8) * 101 // 100 + DOWNLOAD_SLACK


def _tag(buf: bytes, pos: int, order: str) -> tuple[int, int]:
    """(type, byte count) of a full 8-byte tag, as a variable and a matrix start with."""
    return struct.unpack_from(order + "II", buf, pos)


def _element(buf: bytes, pos: int, order: str) -> tuple[int, int, int, int]:
    """(type, byte count, start of the data, position of the next element) of a data element
    inside a matrix (small elements hold type and count in one word and data in the next)."""
    (first,) = struct.unpack_from(order + "I", buf, pos)
    if first >> 16:
        return first & 0xFFFF, first >> 16, pos + 4, pos + 8
    mdtype, count = _tag(buf, pos, order)
    return mdtype, count, pos + 8, pos + 8 + count + (-count % 8)


def _matrix_header(head: bytes, order: str) -> tuple[str, int, bool, tuple[int, ...], int | None, int]:
    """(name, class, complex, dims, data type, data byte count) of a matrix from its first bytes;
    the data type is None for a matrix that is not numeric."""
    mdtype, _ = _tag(head, 0, order)
    if mdtype != _MI_MATRIX:
        raise ValueError(f"expected a matrix, found data type {mdtype}")
    _, _, start, pos = _element(head, 8, order)
    (flags,) = struct.unpack_from(order + "I", head, start)
    _, count, start, pos = _element(head, pos, order)
    dims = struct.unpack_from(f"{order}{count // 4}i", head, start)
    _, count, start, pos = _element(head, pos, order)
    name = head[start : start + count].decode("latin1")
    mclass, is_complex = flags & 0xFF, bool(flags & 0x800)
    if mclass not in _MX_NUMERIC:
        return name, mclass, is_complex, dims, None, 0
    data_type, count, _, _ = _element(head, pos, order)
    return name, mclass, is_complex, dims, data_type, count


def check_mat_headers(payload: bytes, split: str, source: str) -> None:
    """Check the headers of X and y in a MATLAB 5 file against SVHN's shapes, and that their data
    is no larger than those shapes, before the file is loaded (inflating only the headers)."""
    if len(payload) < 128 or 0 in payload[:4] or payload[126:128] not in (b"IM", b"MI"):
        return  # not MATLAB 5: version 4 files are not compressed; others the reader refuses
    order = "<" if payload[126:128] == b"IM" else ">"
    view, pos = memoryview(payload), 128
    while pos + 8 <= len(payload):
        try:
            mdtype, count = _tag(payload, pos, order)
            start = pos + 8
            if mdtype == _MI_COMPRESSED:
                head = zlib.decompressobj().decompress(view[start : start + count], _HEAD_BYTES)
            else:
                head = bytes(view[pos : pos + _HEAD_BYTES])
            name, mclass, is_complex, dims, data_type, data_bytes = _matrix_header(head, order)
        except (struct.error, ValueError, zlib.error) as exc:
            raise InfoGANError(f"{source} is not a readable MATLAB file ({exc}); download it again") from None
        pos = start + count  # as the MATLAB reader steps: compressed variables are not padded
        if name not in ("X", "y"):
            continue
        if data_type is None or is_complex or data_type not in _MI_SIZES:
            raise InfoGANError(f"{source}: {name} is not a real numeric array as in SVHN's files; download it again")
        if name == "X" and (len(dims) != 4 or dims[:3] != (32, 32, 3) or (mclass, data_type) != (_MX_UINT8, _MI_UINT8)):
            raise InfoGANError(f"{source}: X has shape {tuple(dims)} in its header; SVHN's is 32x32x3xN uint8")
        if name == "X" and dims[3] != COUNTS[split]:
            raise InfoGANError(_count_message(source, dims[3], split))
        if name == "y" and math.prod(dims) != COUNTS[split]:
            raise InfoGANError(
                f"{source}: y has shape {tuple(dims)} in its header; SVHN's {split} split has "
                f"{COUNTS[split]} labels. It is incomplete or another file: download it again"
            )
        if data_bytes != math.prod(dims) * _MI_SIZES[data_type]:
            raise InfoGANError(
                f"{source}: {name} claims {data_bytes} bytes of data for shape {tuple(dims)}; "
                "the file is damaged or made to exhaust memory: download it again"
            )


def _count_message(source: str, count: int, split: str) -> str:
    return (
        f"{source} holds {count} images; SVHN's {split} split has {COUNTS[split]}. "
        "It is incomplete or another file: download it again"
    )


def parse_mat(payload: bytes, split: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,) with digit 0 as 0) from SVHN's .mat."""
    if payload.startswith(b"MATLAB 7.3"):  # HDF5-based; scipy does not read these
        raise InfoGANError(f"{source} is a MATLAB 7.3 file; SVHN's files are version 5: download them again")
    check_mat_headers(payload, split, source)
    import scipy.io  # here: SciPy would slow every command's start

    try:
        data = scipy.io.loadmat(io.BytesIO(payload), variable_names=["X", "y"])
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
        raise InfoGANError(_count_message(source, images.shape[3], split))
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
