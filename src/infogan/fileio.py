"""Atomic file writes (a file appears complete under its name, or not at all), the clean-up of
writes a killed process left, and reading JSON-lines logs."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from infogan.errors import InfoGANError

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


def write_output(path: str | Path, payload: bytes) -> None:
    """`write_bytes_atomically` for a file a user asked for: a failure is an InfoGANError naming it."""
    try:
        write_bytes_atomically(path, payload)
    except OSError as exc:
        raise InfoGANError(f"cannot write {path}: {exc.strerror or exc}") from None


def remove_leftovers(*folders: Path) -> None:
    """Delete the temporary files of writes that a killed process never finished."""
    for folder in folders:
        for pattern in LEFTOVER_PATTERNS:
            for leftover in folder.glob(pattern):
                if leftover.is_file():
                    leftover.unlink(missing_ok=True)


def read_jsonl(path: Path) -> tuple[list[dict], bool]:
    """The records of a JSON-lines file and whether its last line was cut off (dropped).

    A damaged line anywhere else is an error naming its line number.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InfoGANError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = text.split("\n")
    records, torn = [], False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it: a write cut off
                torn = True
                break
            raise InfoGANError(
                f"{path} is damaged at line {number} ({exc.msg}); delete that line or restore the file"
            ) from None
        if not isinstance(record, dict):
            raise InfoGANError(f"{path} is damaged at line {number} (not a JSON object); delete that line")
        records.append(record)
    return records, torn


def to_stderr(line: str) -> None:
    """Print one progress line to standard error at once (the default log of long operations)."""
    print(line, file=sys.stderr, flush=True)
