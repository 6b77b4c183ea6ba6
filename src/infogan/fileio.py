"""Atomic file writes: a file appears complete under its name, or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

LEFTOVER_PATTERNS = (".*.part", ".tmp*")  # our atomic writes; safetensors' own temporary files


@contextlib.contextmanager
def atomic_write(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target` to write to; when the block succeeds the file is
    flushed to disk and renamed over `target`, when it fails the temporary file is deleted.

    Temporary files are named `.NAME.*.part`, so a reader can tell them from finished files.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        tmp.chmod(0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomically(target: str | Path, payload: bytes) -> None:
    with atomic_write(target) as tmp:
        tmp.write_bytes(payload)


def remove_leftovers(*folders: Path) -> None:
    """Delete the temporary files of writes that a killed process never finished."""
    for folder in folders:
        for pattern in LEFTOVER_PATTERNS:
            for leftover in folder.glob(pattern):
                if leftover.is_file():
                    leftover.unlink(missing_ok=True)
