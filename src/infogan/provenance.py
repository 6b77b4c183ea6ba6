"""Where a run ran, for its history: the processor, CPU count, threads and GPU, and the commit of
infogan's source when it is installed from a git checkout (an editable install)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

PACKAGE = Path(__file__).resolve().parent


def processor_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The processor, its CPU count, PyTorch's threads and its CPU capability (AVX2, AVX512...),
    and the GPU when this process has started CUDA (a run on a GPU has, by the time it writes)."""
    info: dict[str, Any] = {
        "processor": processor_name(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if torch.cuda.is_initialized():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def source_commit() -> dict[str, Any] | None:
    """The git commit infogan's source is at, and whether its `src/` has uncommitted changes;
    None when the package is not a git checkout's `src/infogan` (an installed wheel) or git
    cannot say."""
    try:
        top = Path(_git("rev-parse", "--show-toplevel"))
        if (top / "src" / "infogan").resolve() != PACKAGE:
            return None  # some other repository around an installed package
        commit = _git("rev-parse", "HEAD")
        changed = bool(_git("status", "--porcelain", "--", str(top / "src")))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "src_changed": changed}


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(PACKAGE), *args], capture_output=True, text=True, check=True, timeout=10)
    return done.stdout.strip()
