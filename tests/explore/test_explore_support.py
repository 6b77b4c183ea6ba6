"""Shared by the explorer's tests (no tests here): one tiny MNIST run trained once per session,
whose two checkpoints are two different models, and the explorer started from the CLI."""

from __future__ import annotations

import contextlib
import json
import re
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import infogan
from infogan.cli import main

STEPS = 6
TRAIN = [
    "--max-steps",
    str(STEPS),
    "--set",
    "optim.batch_size=64",  # fewer, larger batches: loading a model recalibrates batch norm batch by batch
    "--set",
    "logging.checkpoint_every=3",
    "--set",
    "logging.log_every=3",
    "--set",
    "logging.image_every=1000",
    "--set",
    "logging.tensorboard=false",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--progress",
    "lines",
]


@contextlib.contextmanager
def torch_threads(count: int):
    """PyTorch's thread count set for a block and put back after (it is process-wide)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class TinyRuns:
    run: Path  # the run directory (its newest checkpoint, step 6), with an evaluation.json
    early: Path  # the run's step-3 checkpoint file: a second, different model
    model: infogan.InfoGAN  # infogan.load(run)
    early_model: infogan.InfoGAN  # infogan.load(early)


_CACHE: dict[str, TinyRuns] = {}


def tiny_runs(tmp_path_factory, data_dir: Path, mnist_test) -> TinyRuns:
    """The session's tiny run, trained (and evaluated on 500 test images) the first time."""
    if "runs" not in _CACHE:
        run = tmp_path_factory.mktemp("session-explore") / "run"  # session-*: kept across modules (conftest)
        with torch_threads(1):
            assert main(["train", "--out", str(run), "--data-dir", str(data_dir), *TRAIN]) == 0
            model = infogan.load(run)
            early = run / "checkpoints" / "step-0000003.safetensors"
            early_model = infogan.load(early)
            images, labels = mnist_test
            report = {"split": "test", **infogan.evaluate(model, images[:500], labels[:500], samples=256)}
        (run / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")  # as `infogan evaluate` writes
        _CACHE["runs"] = TinyRuns(run, early, model, early_model)
    return _CACHE["runs"]


def start_explorer(paths: list[Path], timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """`infogan explore PATHS --port 0` in a subprocess, and the address it printed."""
    command = [sys.executable, "-m", "infogan", "explore", *map(str, paths), "--port", "0", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if selector.select(timeout=0.5):
            line = process.stdout.readline()
            found = re.search(r"http://\S+/", line)
            if found:
                return process, found.group(0)
    process.kill()
    _, err = process.communicate()
    raise AssertionError(f"infogan explore printed no address within {timeout:.0f} s: {err[-2000:]}")


def stop_explorer(process: subprocess.Popen) -> str:
    """Ctrl-C the explorer; its stderr (which must hold no traceback)."""
    process.send_signal(2)  # SIGINT, as Ctrl-C sends
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err
