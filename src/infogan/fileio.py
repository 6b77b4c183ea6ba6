"""Atomic file writes (a file appears complete under its name, or not at all), the clean-up of
writes a killed process left, and reading JSON-lines logs."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from infogan.errors import InfoGANError

TEMP_PREFIX = ".infogan-tmp-"  # a temporary file of ours: a name no user would choose
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def atomic_write(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target` to write to; when the block succeeds the file is
    flushed to disk and renamed over `target`, when it fails the temporary file is deleted.

    Temporary files are named `.infogan-tmp-NAME.*.part`, so a reader can tell them from
    finished files and `remove_leftovers` from anyone else's.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{TEMP_PREFIX}{target.name[:100]}."  # room for the rest in a 255-byte name
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".part")
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


def check_output_folder(path: str | Path) -> None:
    """Refuse a file a user asked for in a folder that does not exist: a mistyped path should
    not leave folders behind (the run directory's own writers make theirs)."""
    folder = Path(path).parent
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise InfoGANError(f"cannot write {path}: the folder {folder} {what}; create it first")


def write_output(path: str | Path, payload: bytes) -> None:
    """`write_bytes_atomically` for a file a user asked for: a failure is an InfoGANError naming it."""
    check_output_folder(path)
    try:
        write_bytes_atomically(path, payload)
    except OSError as exc:
        raise write_error(exc, path, needed=len(payload)) from None


def write_error(
    exc: OSError, path: str | Path, what: str = "", needed: int | None = None, then: str = ""
) -> InfoGANError:
    """The error for a write to `path` (`what` it is) that failed with `exc`, said the same way by
    every writer: a full disk names the room left there and the `needed` bytes when known;
    `then` is what to do once the write can succeed (e.g. how to resume)."""
    where = f"{what} {path}" if what else str(path)
    reason = exc.strerror or str(exc)
    if exc.errno not in FULL_DISK:
        return InfoGANError(f"cannot write {where}: {reason}{then}")
    need = f", about {format_size(needed)} needed" if needed else ""
    return InfoGANError(
        f"the disk is full: cannot write {where} ({reason}); {free_space(Path(path))} left on that disk{need}; "
        f"free space there or write to another disk{then}"
    )


def free_space(path: Path) -> str:
    """The free space of the file system holding `path` (or its nearest existing folder)."""
    for folder in (path, *path.parents):
        with contextlib.suppress(OSError):
            if folder.exists():
                return format_size(shutil.disk_usage(folder).free)
    return "an unknown amount"


def format_size(size: float) -> str:
    """A size in bytes for a message: "512 bytes", "4.2 MB"."""
    if size < 1000:
        return f"{int(size)} bytes"
    units = ["kB", "MB", "GB"]
    size /= 1000
    while size >= 1000 and len(units) > 1:
        size /= 1000
        units.pop(0)
    return f"{size:.1f} {units[0]}"


def remove_leftovers(folder: Path, names: Iterable[str] | None = None) -> None:
    """Delete the temporary files (`atomic_write`'s) of writes that a killed process never
    finished in `folder`: those of the files `names`, or every one of ours when `names` is None.
    Nothing else is touched, whatever its name looks like."""
    patterns = [f"{TEMP_PREFIX}*"] if names is None else [f"{TEMP_PREFIX}{name[:100]}.*.part" for name in names]
    for pattern in patterns:
        for leftover in folder.glob(pattern):
            if leftover.is_file() and not leftover.is_symlink():
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
