"""A run directory: the one place that holds a run's whole truth.

    RUN_DIR/config.yaml        the resolved config (runtime settings included)
    RUN_DIR/metrics.jsonl      one JSON line per log step
    RUN_DIR/history.jsonl      one JSON line per start or resume: step, versions, what changed
    RUN_DIR/checkpoints/       step-NNNNNNN.safetensors, the newest few
    RUN_DIR/images/            progress samples and traversals
    RUN_DIR/tensorboard/       the same metrics for TensorBoard (when installed)
    RUN_DIR/.lock              held by the process training there

`RunDirectory` owns all of it: the lock, writing each file, checkpoint rotation and the clean-up
of what a killed process leaves. Which config a run gets is `infogan.training.resume`'s.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

import infogan.checkpoint as ckpt
from infogan.config import Config, save_config
from infogan.errors import InfoGANError
from infogan.fileio import read_jsonl, remove_leftovers, write_bytes_atomically
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
            raise InfoGANError(f"cannot write to the run directory {self.path}: {exc.strerror or exc}") from None
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

    def __exit__(self, *exc_info) -> None:
        self.close()
        self.unlock()

    # -- preparing and resuming -------------------------------------------------------------

    def has_run(self) -> bool:
        return bool(ckpt.checkpoint_paths(self.path))

    def prepare(self, config: Config, step: int, changes: list[str] = ()) -> None:
        """Ready the folder for training from `step`: folders, config.yaml, a metrics log cut
        back to `step`, no leftovers of a killed process, and a history line."""
        try:
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
        except OSError as exc:
            raise InfoGANError(f"cannot write to the run directory {self.path}: {exc.strerror or exc}") from None

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

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in record.items():
                if key != "step":
                    self._writer.add_scalar(key, value, record["step"])

    def append_history(self, event: dict[str, Any]) -> None:
        with open(self.history_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({**event, "pid": os.getpid(), "versions": versions()}) + "\n")

    def open_tensorboard(self) -> None:
        if self._writer is None:
            self._writer = _tensorboard_writer(self.path / "tensorboard")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:07d}.safetensors"

    def save_checkpoint(self, snapshot: ckpt.Snapshot, keep: int) -> Path:
        """Write the snapshot as the checkpoint of its step; keep the newest `keep` checkpoints
        that can be read (a file that cannot be read is never counted, and never deleted)."""
        path = self.checkpoint_path(snapshot.step)
        ckpt.save_snapshot(path, snapshot)
        readable = [p for p in ckpt.checkpoint_paths(self.path) if p == path or ckpt.is_readable(p)]
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
