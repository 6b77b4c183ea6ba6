"""A run directory: the one place that holds a run's whole truth.

    RUN_DIR/config.yaml        the resolved config (runtime settings included)
    RUN_DIR/metrics.jsonl      one JSON line per log step
    RUN_DIR/history.jsonl      one JSON line per start or resume: step, versions, machine, the
                               source's commit, what changed
    RUN_DIR/checkpoints/       step-NNNNNNN.safetensors, the newest few
    RUN_DIR/images/            progress samples and traversals
    RUN_DIR/tensorboard/       the same metrics for TensorBoard (when installed)
    RUN_DIR/.lock              held by the process training there

`RunDirectory` owns all of it: the lock, writing each file, checkpoint rotation and the clean-up
of what a killed process leaves. Every write that fails says so one way (`writing`): a full disk
names the disk's free space, the room a checkpoint needs and how to carry on. Which config a run
gets is `infogan.training.resume`'s.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import infogan.checkpoint as ckpt
from infogan.config import Config, save_config
from infogan.errors import InfoGANError
from infogan.fileio import read_jsonl, remove_leftovers, write_bytes_atomically, write_error
from infogan.provenance import machine, source_commit
from infogan.version import __version__

OWN_FILES = ("config.yaml", "metrics.jsonl", "history.jsonl")  # written at the top of the run directory


class RunDirectory:
    """The files of one run, and the exclusive lock of the process that writes them."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_handle = None
        self._writer = None

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def images(self) -> Path:
        return self.path / "images"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def history_path(self) -> Path:
        return self.path / "history.jsonl"

    # -- lock -------------------------------------------------------------------------------

    @property
    def locked(self) -> bool:
        return self._lock_handle is not None

    def lock(self) -> None:
        """Take the run's exclusive lock, or refuse naming the process that holds it.

        The lock is an flock on RUN_DIR/.lock, so the kernel releases it when its process ends
        in any way (even SIGKILL): a lock file left by a dead process never blocks anyone.
        """
        if self.locked:
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = open(self.path / ".lock", "a+", encoding="utf-8")  # noqa: SIM115 (held until unlock)
        except OSError as exc:
            raise write_error(exc, self.path, "to the run directory") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise InfoGANError(
                f"{self.path} is in use by another infogan process (pid {holder}); wait for it to finish "
                f"or stop it (kill {holder}), or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_handle = handle

    def unlock(self) -> None:
        if self._lock_handle is None:
            return
        handle, self._lock_handle = self._lock_handle, None
        handle.truncate(0)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()

    def __enter__(self) -> RunDirectory:
        self.lock()
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        try:
            self.close()
        except InfoGANError:
            if exc_type is None:  # else the error on its way out is the one to see
                raise
        finally:
            self.unlock()

    # -- preparing and resuming -------------------------------------------------------------

    def has_run(self) -> bool:
        return bool(ckpt.checkpoint_paths(self.path))

    def prepare(self, config: Config, step: int, changes: list[str] = ()) -> None:
        """Ready the folder for training from `step`: folders, config.yaml, a metrics log cut
        back to `step`, no leftovers of a killed process, and a history line."""
        with self.writing(self.path, "to the run directory"):
            self.images.mkdir(parents=True, exist_ok=True)
            self.checkpoints.mkdir(exist_ok=True)
            remove_leftovers(self.path, names=OWN_FILES)  # the folder may hold the user's files: only ours go
            remove_leftovers(self.checkpoints)
            remove_leftovers(self.images)
            save_config(config, self.path / "config.yaml")
            self._cut_metrics(step)
            event = "resume" if step else "start"
            world_size = config.distributed.world_size
            self.append_history({"event": event, "step": step, "changes": list(changes), "world_size": world_size})

    def latest_valid(self) -> tuple[ckpt.Snapshot, Path]:
        return ckpt.load_latest_valid(self.path)

    def _cut_metrics(self, step: int) -> None:
        """Drop log lines past `step` (written after the checkpoint a resumed run starts from)
        and a cut-off last line (what a kill or a full disk leaves), saying so."""
        if not self.metrics_path.exists():
            return
        records, torn = read_jsonl(self.metrics_path)
        if torn:
            print(f"note: dropped the cut-off last line of {self.metrics_path}", file=sys.stderr)
        kept = [record for record in records if record.get("step", 0) <= step]
        if torn or len(kept) != len(records):
            payload = "".join(json.dumps(record) + "\n" for record in kept)
            write_bytes_atomically(self.metrics_path, payload.encode("utf-8"))

    # -- writing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, path: Path, what: str) -> Iterator[None]:
        """Turn an OSError of the block, which writes `what` at `path`, into the InfoGANError every
        writer of the run gives: a full disk with the room a checkpoint needs, and what to do then."""
        try:
            yield
        except OSError as exc:
            raise self.write_failed(exc, path, what) from None

    def write_failed(self, exc: OSError, path: str | Path, what: str = "") -> InfoGANError:
        """The error for a write of `what` at `path` in the run that failed with `exc`."""
        try:
            needed = ckpt.checkpoint_paths(self.path)[-1].stat().st_size  # what the next checkpoint takes
        except (IndexError, OSError):
            needed = None
        return write_error(exc, path, what, needed, self._then())

    def _then(self) -> str:
        """How to carry on once writing works again."""
        if self.has_run():
            return f"; then continue with: infogan train --resume --out {self.path}"
        return f"; then start again with: infogan train --out {self.path} (and the same options)"

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.writing(self.metrics_path, "the metrics log"), open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            with self.writing(self.path / "tensorboard", "TensorBoard's log"):
                for key, value in record.items():
                    if key != "step":
                        self._writer.add_scalar(key, value, record["step"])

    def append_history(self, event: dict[str, Any]) -> None:
        where = {"machine": machine(), "source": source_commit()}
        line = json.dumps({**event, "pid": os.getpid(), "versions": versions(), **where}) + "\n"
        with self.writing(self.history_path, "the run's history"), open(self.history_path, "a", encoding="utf-8") as f:
            f.write(line)

    def open_tensorboard(self) -> None:
        if self._writer is None:
            with self.writing(self.path / "tensorboard", "TensorBoard's log"):
                self._writer = _tensorboard_writer(self.path / "tensorboard")

    def close(self) -> None:
        """Flush and close TensorBoard's log (once, even when closing fails)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with self.writing(self.path / "tensorboard", "TensorBoard's log"):
                writer.close()

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:07d}.safetensors"

    def save_checkpoint(self, snapshot: ckpt.Snapshot, keep: int) -> Path:
        """Write the snapshot as the checkpoint of its step; keep the newest `keep` checkpoints
        that can be read (a file that cannot be read is never counted, and never deleted)."""
        path = self.checkpoint_path(snapshot.step)
        previous = [p for p in ckpt.checkpoint_paths(self.path) if p != path]
        kept = f"the previous checkpoint {previous[-1].name} is intact" if previous else (
            "no checkpoint of this run has been written yet"
        )
        ckpt.save_snapshot(path, snapshot, then=f"; {kept}{self._then()}")
        readable = [p for p in ckpt.checkpoint_paths(self.path) if p == path or ckpt.is_readable(p)]
        with self.writing(self.checkpoints, "the checkpoints (removing old ones)"):
            for old in readable[:-keep]:
                old.unlink(missing_ok=True)
        return path


def versions() -> dict[str, str]:
    """The versions that decide what a run computes."""
    return {
        "infogan": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda or "",
    }


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))
