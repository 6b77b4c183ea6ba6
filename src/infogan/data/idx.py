"""Reading IDX files (the MNIST format), gzip-compressed or not, with checks on every field."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from ..errors import InfoGANError

_DTYPES = {0x08: np.uint8}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """The file's uncompressed bytes (gunzipped when it starts with the gzip magic)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InfoGANError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise InfoGANError(f"{path} is a damaged gzip file ({exc}); delete it and download it again") from None


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse uncompressed IDX bytes into an array, checking magic number and sizes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise InfoGANError(f"{source} is not an IDX file (bad magic number); expected MNIST-format data")
    dtype_code, ndim = data[2], data[3]
    if dtype_code not in _DTYPES or ndim == 0:
        raise InfoGANError(
            f"{source} is an IDX file of a kind this reader does not handle "
            f"(type 0x{dtype_code:02x}, {ndim} dimensions); expected unsigned bytes"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InfoGANError(f"{source} is truncated inside its header; download it again")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    actual = len(data) - header
    if actual != expected:
        problem = "truncated" if actual < expected else "longer than its header says"
        raise InfoGANError(
            f"{source} is {problem}: header {shape} needs {expected} bytes of data, found {actual}; download it again"
        )
    return np.frombuffer(data, dtype=_DTYPES[dtype_code], offset=header).reshape(shape)


def read_idx(path: str | Path, sha256: str | None = None) -> np.ndarray:
    """Read an IDX file; when `sha256` is given, the uncompressed bytes must match it."""
    path = Path(path)
    data = read_bytes(path)
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise InfoGANError(
                f"{path} has the wrong contents (SHA-256 {digest[:12]}..., expected {sha256[:12]}...); "
                "it is damaged or a different file: delete it and download it again"
            )
    return parse_idx(data, str(path))
