"""Reading IDX files (the MNIST format), gzip-compressed or not, with checks on every field.

The header is read and checked first; the body is then streamed in chunks, never more than the
header says (a gzip that inflates to far more than its header claims is refused as soon as it
goes past that), and hashed on the way when a SHA-256 is given.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from infogan.data.sources import known_file, known_shape, other_file_message
from infogan.errors import InfoGANError

_DTYPES = {0x08: np.uint8}
GZIP_MAGIC = b"\x1f\x8b"
MAX_DIMS = 32  # the most dimensions a numpy array has on every numpy version
MAX_IDX_BYTES = 2 * 1024**3  # the largest body this reader takes (more than any IDX data set in use)
CHUNK = 1024**2


def _damaged_gzip(path: Path | str, exc: BaseException) -> InfoGANError:
    return InfoGANError(f"{path} is a damaged gzip file ({exc}); delete it and download it again")


@contextlib.contextmanager
def open_uncompressed(path: Path) -> Iterator[BinaryIO]:
    """The file as a stream of its uncompressed bytes (gunzipped as read when it starts with the
    gzip magic). Failures to open or read it, and damaged gzip data, become InfoGANErrors."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InfoGANError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            compressed = handle.read(2) == GZIP_MAGIC
            handle.seek(0)
        except OSError as exc:
            raise InfoGANError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not compressed:
            try:
                yield handle
            except OSError as exc:
                raise InfoGANError(f"cannot read {path}: {exc.strerror or exc}") from None
            return
        try:
            with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                yield stream
        except (OSError, EOFError, zlib.error) as exc:
            raise _damaged_gzip(path, exc) from None


def read_bytes(path: Path, limit: int, what: str = "data") -> bytes:
    """The file's uncompressed bytes (gunzipped when it starts with the gzip magic), refusing a
    file whose uncompressed size passes `limit` bytes as soon as it does, before reading the rest."""
    with open_uncompressed(path) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise InfoGANError(
            f"{path} holds more than {limit} bytes (uncompressed), more than any {what} file; "
            "it is damaged or a different file: delete it and download it again"
        )
    return data


def read_header(stream: BinaryIO, source: str) -> tuple[np.dtype, tuple[int, ...], bytes]:
    """(dtype, shape, the header's bytes) from the stream's IDX header, checked: magic, type,
    number of dimensions, size of the body."""
    head = stream.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise InfoGANError(f"{source} is not an IDX file (bad magic number); expected MNIST-format data")
    dtype_code, ndim = head[2], head[3]
    if dtype_code not in _DTYPES or ndim == 0:
        raise InfoGANError(
            f"{source} is an IDX file of a kind this reader does not handle "
            f"(type 0x{dtype_code:02x}, {ndim} dimensions); expected unsigned bytes"
        )
    if ndim > MAX_DIMS:
        raise InfoGANError(
            f"{source} claims {ndim} dimensions, more than the {MAX_DIMS} an array can have; "
            "it is damaged or not an IDX file: download it again"
        )
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise InfoGANError(f"{source} is truncated inside its header; download it again")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    size = math.prod(shape)  # exact (Python integers), so no overflow however large the dims
    extent = math.prod(d for d in shape if d)  # an empty array with absurd other sides is refused too
    if max(size, extent) > MAX_IDX_BYTES:
        raise InfoGANError(
            f"{source} claims {'x'.join(map(str, shape))} = {size} bytes of data, more than the "
            f"{MAX_IDX_BYTES} this reader takes; it is damaged or not an IDX data set: download it again"
        )
    return np.dtype(_DTYPES[dtype_code]), shape, head + dims


def read_body(stream: BinaryIO, shape: tuple[int, ...], source: str, digest=None) -> bytearray:
    """Exactly the prod(shape) bytes after the header, read in chunks (updating `digest`); an
    error as soon as the stream ends early or holds even one byte more."""
    expected = math.prod(shape)
    body = bytearray()
    while len(body) < expected:
        chunk = stream.read(min(CHUNK, expected - len(body)))
        if not chunk:
            raise InfoGANError(
                f"{source} is truncated: header {shape} needs {expected} bytes of data, found {len(body)}; "
                "download it again"
            )
        body += chunk
        if digest is not None:
            digest.update(chunk)
    extra = stream.read(1)
    if extra:
        raise InfoGANError(
            f"{source} is longer than its header says: header {shape} needs {expected} bytes of data "
            "and more follows; download it again"
        )
    return body


def read_idx_stream(
    stream: BinaryIO,
    source: str,
    sha256: str | None = None,
    shape: tuple[int, ...] | None = None,
    image_shape: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """An array from a stream of uncompressed IDX bytes: header checked (against `shape` or
    `image_shape` too when given) before the body is read, the body bounded by the header and
    checked against `sha256`."""
    dtype, found, header = read_header(stream, source)
    if shape is not None and found != tuple(shape):
        raise InfoGANError(
            f"{source} has a header for data of shape {found}; the file it should be holds {tuple(shape)}. "
            "It is damaged or a different file: delete it and download it again"
        )
    if image_shape is not None:
        check_image_header(found, image_shape, source)
    digest = hashlib.sha256() if sha256 is not None else None
    if digest is not None:
        digest.update(header)
    body = read_body(stream, found, source, digest)
    if digest is not None and digest.hexdigest() != sha256:
        raise _wrong_contents(source, digest.hexdigest(), sha256)
    return np.frombuffer(body, dtype=dtype).reshape(found)


def _wrong_contents(source: str, found: str, expected: str) -> InfoGANError:
    """The error for a checksum that does not match: a valid file of another known data set is
    named for what it is; anything else is damaged or a different file."""
    have, want = known_file(found), known_file(expected)
    if have is not None and want is not None:
        return InfoGANError(other_file_message(source, have, want))
    return InfoGANError(
        f"{source} has the wrong contents (SHA-256 {found[:12]}..., expected {expected[:12]}...); "
        "it is damaged or a different file: delete it and download it again"
    )


def check_image_header(found: tuple[int, ...], image_shape: tuple[int, int, int], source: str) -> None:
    """Refuse a header whose images are not (channels, height, width): (N, H, W) holds grey
    images, (N, C, H, W) images of C channels."""
    channels, height, width = image_shape
    fits = found[1:] == (channels, height, width) or (channels == 1 and found[1:] == (height, width))
    if not fits:
        raise InfoGANError(
            f"{source} holds data of shape {found} (so says its header); this model takes "
            f"{channels}x{height}x{width} images"
        )


def uncompressed_sha256(path: Path) -> str:
    """The SHA-256 of a file's uncompressed bytes (gunzipped as read when it is a gzip)."""
    digest = hashlib.sha256()
    with open_uncompressed(path) as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse uncompressed IDX bytes into an array, checking magic number and sizes."""
    return read_idx_stream(io.BytesIO(data), source)


def read_idx(
    path: str | Path,
    sha256: str | None = None,
    shape: tuple[int, ...] | None = None,
    image_shape: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """Read an IDX file; when `sha256` is given, the uncompressed bytes must match it, and for a
    standard file (or when `shape` is given) the header must give its shape before the body is
    read. With `image_shape` (channels, height, width) the header must hold such images."""
    path = Path(path)
    if shape is None:
        shape = known_shape(sha256)
    with open_uncompressed(path) as stream:
        return read_idx_stream(stream, str(path), sha256, shape, image_shape)
