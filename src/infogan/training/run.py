"""`train()`: the whole operation of training into a run directory, in this process.

It decides the config (new run or resume), takes the run's lock, applies the thread count,
loads the training images, trains, and hands back the trained model. The command line's
`infogan train` is this call plus printing; under torchrun every rank makes the same call.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

import infogan.checkpoint as ckpt
from infogan.config import Config, parse_override
from infogan.data import data_folder, load_training_images, training_files
from infogan.errors import InfoGANError
from infogan.fileio import write_bytes_atomically, write_error
from infogan.model import InfoGAN
from infogan.training.loop import Trainer
from infogan.training.memory import reuse_freed_memory
from infogan.training.ranks import World, announce, process_group
from infogan.training.resume import ConfigSource, breaks_bit_identity, training_config
from infogan.training.run_directory import RunDirectory

Resume = bool | Literal["auto"]
Progress = Literal["auto", "bar", "lines", "none"] | Callable[[Trainer], None]
RUNTIME_KEYS = ("device", "precision", "compile", "cuda_graphs", "threads", "on_nonfinite")
DATA_RECORD = "data.json"  # in the run directory: where the training data was last read from, and its checksums


@dataclass
class TrainResult:
    """What `train` hands back: the trained model (as `infogan.load` gives it; None after a
    dry run), the resolved config, the run directory (None without one), the step reached and
    whether training got to `optim.steps` (False when a signal stopped it)."""

    model: InfoGAN | None
    config: Config
    run_dir: Path | None
    step: int
    completed: bool


def train(
    config: ConfigSource = None,
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    preset: str | None = None,
    resume: Resume = "auto",
    data_dir: str | Path | None = None,
    images: torch.Tensor | None = None,
    runtime: Mapping[str, Any] | None = None,
    progress: Progress = "auto",
    handle_signals: bool = False,
    dry_run: bool = False,
    world: World | None = None,
) -> TrainResult:
    """Train an InfoGAN, into the run directory `out` when given, and return the result.

    `config` is a preset name ("mnist", see `infogan presets`), a YAML, TOML or JSON file, or a
    `Config`; `preset` puts a file on top of that preset (the default preset is mnist).
    `overrides` change single keys ("optim.steps=200" or {"optim.steps": 200}). `resume`:
    True continues the run in `out` from its newest valid checkpoint, False starts a new run
    (refused when `out` holds one), "auto" resumes when `out` has checkpoints and starts
    otherwise. The training images are read from `data_dir` (else INFOGAN_DATA_DIR, ...) unless
    given as `images` (uint8 or float (N, C, H, W)). `runtime` sets how it runs (device,
    precision, compile, cuda_graphs, threads, on_nonfinite; see `infogan.runtime`); the thread
    count is applied to this process and recorded in the run. `progress`: "bar", "lines"
    (a log line per log step), "none", "auto" (a bar on a terminal) or a function called with
    the trainer after every step. With `handle_signals`, SIGINT and SIGTERM stop after the
    current step with a checkpoint (main thread only). `dry_run` resolves the config and stops.
    Under torchrun (RANK, WORLD_SIZE in the environment) every rank makes this same call.

    Bad input raises `InfoGANError` with a message that says what to fix.
    """
    world = world or World.from_environment()
    with process_group(world):
        return _train(world, config, out, _override_list(overrides), preset, resume, data_dir, images,
                      dict(runtime or {}), progress, handle_signals, dry_run)  # fmt: skip


def _train(world, config, out, overrides, preset, resume, data_dir, images, runtime, progress, handle_signals,
           dry_run) -> TrainResult:  # fmt: skip
    run = None if out is None else RunDirectory(out)
    unknown = sorted(set(runtime) - set(RUNTIME_KEYS))
    if unknown:
        raise InfoGANError(f"runtime: {unknown[0]!r} is not a runtime setting; use one of {', '.join(RUNTIME_KEYS)}")
    if data_dir is not None:
        runtime["data_dir"] = str(Path(data_dir).resolve())
    try:
        return _train_in(world, run, config, overrides, preset, resume, images, runtime, progress, handle_signals,
                         dry_run)  # fmt: skip
    finally:
        if run is not None:
            run.unlock()  # a notebook that calls again in this process must find the run free


def _train_in(world, run, config, overrides, preset, resume, images, runtime, progress, handle_signals,
              dry_run) -> TrainResult:  # fmt: skip
    kept: dict = {}  # rank 0's checkpoint, read once
    decide = lambda: _decide_config(world, run, config, preset, overrides, resume, runtime, dry_run, kept)  # noqa: E731
    resolved, snapshot_path = world.from_main(decide)
    if dry_run:
        return TrainResult(None, resolved, None if run is None else run.path, 0, False)
    snapshot = kept.get("snapshot") if world.is_main else None
    if snapshot is None and snapshot_path is not None:
        snapshot = ckpt.load_snapshot(snapshot_path)
    if snapshot is not None:
        for change in breaks_bit_identity(snapshot.config, resolved):
            note = f"note: {change} differs from the run so far; it will not be bit-identical to an uninterrupted run"
            announce(world, note)
    if resolved.runtime.threads:
        torch.set_num_threads(resolved.runtime.threads)
    data_dir = data_folder(runtime.get("data_dir"), resolved.runtime.data_dir)  # one given wins over the run's
    step = 0 if snapshot is None else snapshot.step
    images, folder = world.on_every_rank(lambda: _training_images(resolved, images, run, world, data_dir, step))
    if folder is not None:  # the folder the data was read from, for a resume and the commands that read the run
        resolved = resolved.replace(**{"runtime.data_dir": folder})
    reuse_freed_memory()  # no fresh pages from the kernel every step (see infogan.training.memory)
    display = "none" if callable(progress) else progress  # a function replaces the display
    trainer = Trainer(resolved, images, run_dir=run, progress=display, world=world)
    if snapshot is not None:
        trainer.restore(snapshot)
        announce(world, f"resuming {run.path} at step {trainer.step} on {world.describe()}")
    with _stop_on_signals(trainer, world) if handle_signals else contextlib.nullcontext():
        completed = trainer.fit([progress] if callable(progress) else [])
    model = InfoGAN.from_snapshot(trainer.snapshot(), trainer.device)
    return TrainResult(model, trainer.config, None if run is None else run.path, trainer.step, completed)


def _training_images(config: Config, images, run: RunDirectory | None, world: World, data_dir, step: int):
    """Every rank's copy of the training images (read unless given, searching `data_dir` first),
    and the folder they were read from (None when given or not read from a data folder). Rank 0
    also takes a new run's lock, once the config and the data are known to be good (so a mistake
    leaves no folder behind), and records where the data came from. A folder that holds a run is
    refused."""
    source = None
    if images is None:
        images = load_training_images(config.data, config.model, data_dir)
        source = training_files(config.data, data_dir)
    if run is not None and world.is_main and not run.locked:
        run.lock()
        if run.has_run():
            raise InfoGANError(f"{run.path} already holds a run; pass --resume to continue it or choose another --out")
    if run is not None and world.is_main and source is not None:
        _record_data(run, {**source, "step": step})
    return images, None if source is None else source["folder"]


def _record_data(run: RunDirectory, record: dict) -> None:
    """Write RUN_DIR/data.json: the folder and files this start or resume read, with checksums."""
    path = run.path / DATA_RECORD
    try:
        write_bytes_atomically(path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        raise write_error(exc, path, "the data record") from None


def _override_list(overrides: Sequence[str] | Mapping[str, Any]) -> list[str]:
    if isinstance(overrides, Mapping):
        import json

        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        raise InfoGANError(f"overrides must be a list of KEY=VALUE texts or a dict, not the text {overrides!r}")
    return list(overrides)


def _decide_config(world, run, config, preset, overrides, resume, runtime, dry_run, kept):
    """Rank 0's part of starting: the config and the checkpoint to resume from (its path, for
    the other ranks to read; the snapshot itself goes into `kept`). "auto", and a torchrun
    restart (TORCHELASTIC_RESTART_COUNT above 0), resume a run that has checkpoints."""
    has_run = run is not None and run.has_run()
    if resume == "auto":
        resume = has_run
    elif world.restart and not resume and has_run:
        resume = True
        print(f"torchrun restart {world.restart}: resuming {run.path} from its newest checkpoint",
              file=sys.stderr, flush=True)  # fmt: skip
    if resume and run is None:
        raise InfoGANError("resuming needs the run directory: give out=RUN_DIR (--out)")
    given = dict(parse_override(text) for text in overrides).get("distributed.world_size", world.size)
    if given != world.size:
        raise InfoGANError(
            f"distributed.world_size is {given!r}, but {world.describe()} train: the world size is recorded from "
            "the launcher (torchrun --nproc-per-node, --nnodes), not set; drop that override"
        )
    if run is not None and resume and not dry_run and run.path.is_dir():
        run.lock()  # before the checkpoint is read, so a run in use is refused at once
    if not resume and "threads" not in runtime:
        runtime = {**runtime, "threads": torch.get_num_threads()}  # recorded, so a resume uses the same count
    resolved, snapshot = training_config(run, bool(resume), config, preset, overrides, runtime)
    world.share(resolved.optim.batch_size)  # a global batch the ranks cannot split is refused before any work
    kept["snapshot"] = snapshot
    return resolved, None if snapshot is None else str(run.checkpoint_path(snapshot.step))


@contextlib.contextmanager
def _stop_on_signals(trainer: Trainer, world: World) -> Iterator[None]:
    """SIGINT/SIGTERM ask the trainer to stop after the current step (it then saves a
    checkpoint); a second signal stops at once. Under torchrun the launcher passes the signal
    on to every rank, and the ranks stop after the same step. Only the main thread can handle
    signals; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        announce(
            world,
            f"\n{signal.Signals(signum).name}: finishing this step and saving a checkpoint "
            + ("(signal again to stop at once)" if world.size == 1 else f"(all {world.size} ranks stop together)"),
        )
        trainer.request_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
