"""The training loop, handed its parts: the train state (state.py), the batches (infogan.data),
the step (step.py, or its CUDA graph in graph.py), the run directory (run_directory.py), what it
shows (monitoring.py) and the ranks it trains with (ranks.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

import infogan.checkpoint as ckpt
from infogan.config import Config
from infogan.core.contrastive import sample_pairs
from infogan.core.latent import Latent
from infogan.data.batches import InMemoryBatches
from infogan.errors import InfoGANError
from infogan.runtime import resolve_device, slow_precision_warning, use_cuda_graphs
from infogan.training.augment import draw_transforms
from infogan.training.graph import GraphedStep
from infogan.training.monitoring import ProgressImages, StatsWindow
from infogan.training.ranks import World, announce, mark_every_rank, resume_notes, synchronise_batch_norm
from infogan.training.resume import check_resumable
from infogan.training.run_directory import RunDirectory
from infogan.training.state import NonFiniteError, TrainState, diverged_message, divergence_hint
from infogan.training.step import StepContext, stat_names, train_step

__all__ = ["NonFiniteError", "Trainer", "diverged_message"]

Callback = Callable[["Trainer"], None]
NONFINITE_CHECK_EVERY = 10
MAX_ROLLBACKS = 3


class Trainer:
    """Trains one run step by step.

    With a `run_dir` (a path or a `RunDirectory`) it writes there through the run directory:
    the resolved config, the metrics log, progress images and checkpoints, under the run's
    lock; without one it only trains (useful from Python and in tests). How it runs (device,
    bf16, compile, CUDA graphs, what to do on NaN) is `config.runtime`. The networks,
    optimisers and generators are `state` (also reachable as `generator`, `optimizers`, ...).
    `progress`: "bar", "lines" (a line per log step, with a run directory or without), "none"
    or "auto" (a bar when standard error is a terminal, lines otherwise); "bar" and "lines"
    start with a line saying what training starts with (steps, images, device, threads,
    precision, run directory).

    With a `world` of several ranks (`ranks.World`, in a process group started by
    `ranks.process_group`), every rank makes the same call with the same arguments: each
    trains on its share of the global batch `optim.batch_size`, gradients are averaged, and
    rank 0 alone writes the run directory (the others read checkpoints from it on resume and
    rollback, so it must be on a file system they share). The world size is recorded in the
    config (`distributed.world_size`).
    """

    def __init__(
        self,
        config: Config,
        images: torch.Tensor,
        run_dir: str | Path | RunDirectory | None = None,
        progress: bool | str | None = None,
        world: World | None = None,
    ) -> None:
        self.world = world = world or World()
        if config.distributed.world_size != world.size:
            config = config.replace(**{"distributed.world_size": world.size})
        self.config = config
        runtime = config.runtime
        self.share = world.share(config.optim.batch_size)
        self.device = world.device(resolve_device(runtime.device))
        self.cuda_graphs = use_cuda_graphs(runtime.cuda_graphs, runtime.compile, self.device)
        warning = slow_precision_warning(runtime.precision, self.device)
        if warning:
            announce(world, warning)
        if self.cuda_graphs and world.size > 1:
            announce(world, f"note: CUDA graphs are off on {world.describe()} (not verified with the all-reduce)")
            self.cuda_graphs = False
        self.spec = config.latent
        run = run_dir if isinstance(run_dir, RunDirectory) or run_dir is None else RunDirectory(run_dir)
        self.shared_run = run  # every rank's view of the run directory: read, never written
        self.run = run if world.is_main else None  # the one that writes it
        self.progress, self.log_lines = _display(progress, world)
        self.state = TrainState.build(config, self.device, capturable=self.cuda_graphs)
        self._synchronise_batch_norm([self.generator, self.discriminator])
        if runtime.compile:  # in place, so state_dict keys (and checkpoints) stay those of the plain modules
            options = _compile_options(self.device)
            self.generator.compile(options=options)
            self.discriminator.compile(options=options)
        self.batches = InMemoryBatches(
            images, config.optim.batch_size, config.seed, config.model.image_range, self.device, world.rank, world.size
        )
        self.images = ProgressImages(self.spec, config.seed, config.model.image_range)
        self.step = 0
        self.rollbacks = 0
        self.stop_requested = False
        self._changes: list[str] = []  # what a resume changed, for the run's history
        self._new_context()

    def _new_context(self) -> None:
        """The step's context (and a fresh CUDA graph step): again whenever H appears."""
        self._context = StepContext(
            self.config,
            self.spec,
            self.generator,
            self.discriminator,
            self.optimizers,
            self.config.runtime.precision,
            graph_safe=self.cuda_graphs,
            contrastive=self.state.contrastive,
            world=self.world,
        )
        self._graphed = GraphedStep(self._context) if self.cuda_graphs else None

    def _synchronise_batch_norm(self, networks: list[torch.nn.Module]) -> None:
        """With `distributed.sync_batchnorm` on several ranks, batch norm over the global batch."""
        if self.world.size == 1 or not self.config.distributed.sync_batchnorm:
            return
        for network in networks:
            synchronise_batch_norm(network, self.device)

    @property
    def run_dir(self) -> Path | None:
        return None if self.run is None else self.run.path

    @property
    def generator(self) -> torch.nn.Module:
        return self.state.generator

    @property
    def discriminator(self) -> torch.nn.Module:
        return self.state.discriminator

    @property
    def optimizers(self):
        return self.state.optimizers

    @property
    def latent_rng(self) -> torch.Generator:
        return self.state.latent_rng

    @property
    def augment_rng(self) -> torch.Generator:
        return self.state.augment_rng

    # -- checkpoints -----------------------------------------------------------------------

    def snapshot(self) -> ckpt.Snapshot:
        return self.state.snapshot(self.config, self.step)

    def restore(self, snapshot: ckpt.Snapshot) -> None:
        """Continue from a checkpoint of a compatible run (see `TrainState.load`)."""
        self._changes = check_resumable(snapshot.config, self.config)
        had_contrastive = self.state.contrastive is not None
        self.state.load(snapshot, self.config, capturable=self.cuda_graphs)
        self.step = snapshot.step
        for note in resume_notes(snapshot.config.distributed, self.config.distributed, self.config.optim.batch_size):
            announce(self.world, note)
        if self.state.contrastive is not None and not had_contrastive:
            self._synchronise_batch_norm([self.state.contrastive])
            self._new_context()
        elif self._graphed is not None:  # the graph holds the optimiser state tensors just replaced
            self._graphed.reset()

    def save_checkpoint(self) -> Path:
        """Write a checkpoint for the current step and keep only the newest few; returns its path.

        Weights or batch-norm statistics that are not finite are never written: the last good
        checkpoint stays newest. With several ranks every rank calls it: the running statistics
        are averaged and the weights checked identical, rank 0 writes, and all return once the
        file is there (or all raise rank 0's error).
        """
        assert self.shared_run is not None
        self.world.average_batch_norm_statistics(self.state.networks().values())
        self.world.check_same(self.state.networks().values(), f"weights at step {self.step}")
        try:
            self.state.check_finite(self.step)
        except NonFiniteError as exc:  # weights and statistics are the same on every rank now
            mark_every_rank(exc)
            raise
        return self.world.on_every_rank(self._write_checkpoint)  # a failed write stops every rank

    def _write_checkpoint(self) -> Path:
        if self.run is None:
            return self.shared_run.checkpoint_path(self.step)
        return self.run.save_checkpoint(self.snapshot(), self.config.logging.keep_checkpoints)

    # -- loop ------------------------------------------------------------------------------

    def train_on(self, real: torch.Tensor, latent: Latent) -> dict[str, torch.Tensor]:
        """One training step (`training.train_step`) on a batch of real images and a batch of
        latents, on the device, at the current `step` (on several ranks: this rank's share of
        each).

        Returns the step's statistics by name (`training.stat_names(config)`) as tensors on the
        device (read them when you need them: reading waits for the GPU). Does not advance
        `step`; `fit` does. With `loss.lambda_augmented` above 0 the step's image transforms
        are drawn here, from the run's own generator for them (`augment_rng`); once the
        contrastive regulariser is active, H is created (the first time) and the step's pairs
        are drawn from `pairs_rng`.
        """
        draws = pairs = None
        batch = len(latent) * self.world.size  # drawn whole on every rank, so the generators stay in step
        if self.config.loss.lambda_augmented > 0:
            draws = draw_transforms(batch, self.config.loss, self.augment_rng, self.device)
            draws = draws if self.world.size == 1 else draws[self.world.rows(batch)]
        contrastive = self.config.contrastive
        if contrastive.active(self.step):
            if self.state.contrastive is None:
                self.state.start_contrastive(self.config, capturable=self.cuda_graphs)
                self._synchronise_batch_norm([self.state.contrastive])
                self._new_context()
            gap = contrastive.gap_at(self.step)
            pairs = sample_pairs(self.spec, batch, gap, self.state.pairs_rng, self.device)
            pairs = pairs if self.world.size == 1 else pairs.rows(self.world.rows(batch))
        if self._graphed is not None:
            return self._graphed(real, latent, draws, pairs)
        return train_step(self._context, real, latent, draws, pairs)

    def request_stop(self) -> None:
        """Ask `fit` to stop after the current step (and write a checkpoint there)."""
        self.stop_requested = True

    def fit(self, callbacks: Sequence[Callback] = ()) -> bool:
        """Train until `config.optim.steps`; True when it got there, False when stopped early.

        Non-finite losses are checked every few steps. With runtime.on_nonfinite "stop" they
        raise `NonFiniteError`; with "rollback" training goes back to the newest checkpoint,
        halves every learning rate and carries on (at most MAX_ROLLBACKS times). With a run
        directory, its lock is held until `fit` returns (unless the caller holds it already).
        """
        owns_lock = self.run is not None and not self.run.locked
        self.stop_requested = False
        bar = finished = None
        try:
            self.world.on_every_rank(self._prepare_run)  # the others wait until rank 0 has prepared the run
            bar = self._progress_bar(self.config.optim.steps)
            while finished is None:
                try:
                    finished = self._loop(callbacks, bar)
                except NonFiniteError as exc:
                    if self.config.runtime.on_nonfinite == "stop" or not self._roll_back():
                        raise self._diverged(exc) from None
                except OSError as exc:  # what the run directory's writers do not word themselves
                    if self.shared_run is None:
                        raise
                    raise self.shared_run.write_failed(exc, exc.filename or self.shared_run.path) from None
        finally:
            self._finish(bar, owns_lock, quiet=finished is None)
        return finished

    def _finish(self, bar, owns_lock: bool, quiet: bool) -> None:
        """Close the progress bar and TensorBoard's log, and release the lock. `quiet` (an error is
        on its way out): a failing close is dropped, so that it never hides that error."""
        if bar is not None:
            bar.close()
        if self.run is None:
            return
        try:
            self.run.close()
        except Exception:
            if not quiet:
                raise
        finally:
            if owns_lock:
                self.run.unlock()

    def _diverged(self, exc: NonFiniteError) -> NonFiniteError:
        """`exc` with what to do next, for this run: its directory, its newest checkpoint (or that
        there is none) and learning rates below its own."""
        run = self.shared_run
        newest = ckpt.checkpoint_paths(run.path)[-1] if run is not None and run.has_run() else None
        rates = {name: float(self.optimizers.named()[name].param_groups[0]["lr"]) for name in ("d", "g")}
        rollback = self.config.runtime.on_nonfinite == "stop"
        hint = divergence_hint(None if run is None else run.path, newest, rates["d"], rates["g"], rollback)
        error = NonFiniteError(f"{exc} {hint}")
        error.every_rank = getattr(exc, "every_rank", False)  # only rank 0 reports one every rank raised
        return error

    def _prepare_run(self) -> None:
        if self.run is None:
            return
        self.run.lock()
        self.run.prepare(self.config, self.step, self._changes)
        if self.config.logging.tensorboard:
            self.run.open_tensorboard()

    def _loop(self, callbacks: Sequence[Callback], bar) -> bool:
        total = self.config.optim.steps
        window = StatsWindow(stat_names(self.config), self.device, self.world)
        while self.step < total:
            latent = self.spec.sample(self.config.optim.batch_size, self.latent_rng, self.device)
            if self.world.size > 1:  # every rank draws the global batch and keeps its rows
                latent = latent.rows(self.world.rows(self.config.optim.batch_size))
            window.add(self.train_on(self.batches.batch(self.step), latent))
            self.step += 1
            if bar is not None:
                bar.update(1)
            if self.step % NONFINITE_CHECK_EVERY == 0:
                window.check_finite(self.step)
            if self.step % self.config.logging.log_every == 0 or self.step == total:
                window.check_finite(self.step)
                self._log(window.flush(self.config.optim.batch_size), bar)
            self._periodic_outputs(total)
            for callback in callbacks:
                callback(self)
            if self.world.any(self.stop_requested) and self.step < total:  # all ranks stop after the same step
                self.stop_requested = True
                if self.shared_run is not None:
                    self.save_checkpoint()
                return False
        return True

    def _roll_back(self) -> bool:
        """Return to the newest checkpoint with halved learning rates; False when impossible.
        With several ranks rank 0 picks the checkpoint and every rank reads it."""
        run = self.shared_run
        if run is None or self.rollbacks >= MAX_ROLLBACKS:
            return False
        newest = self.world.from_main(lambda: str(run.latest_valid()[1]) if run.has_run() else None)
        if newest is None:
            return False
        path = Path(newest)
        snapshot = ckpt.load_snapshot(path)
        self.restore(snapshot)  # resets a captured step, which would keep the old rates
        self.rollbacks += 1
        self.state.halve_learning_rates()
        announce(
            self.world,
            f"non-finite values: rolled back to {path.name} (step {self.step}) with learning rates halved "
            f"(rollback {self.rollbacks} of {MAX_ROLLBACKS})",
        )
        return True

    def _periodic_outputs(self, total: int) -> None:
        if self.shared_run is None:
            return
        logging = self.config.logging
        if self.step % logging.image_every == 0 or self.step == total:
            self.world.average_batch_norm_statistics([self.generator])  # the images use them
            if self.run is not None:
                with self.run.writing(self.run.images, "progress images"):
                    self.images.save(self.generator, self.run.images, self.step)
        if self.step % logging.checkpoint_every == 0 or self.step == total:
            self.save_checkpoint()

    def _log(self, values: dict[str, float], bar) -> None:
        record = {"step": self.step, **values}
        if self.run is not None:
            self.run.append_metrics(record)
        summary = " ".join(f"{k}={v:.3f}" for k, v in record.items() if k not in ("step", "images_per_s"))
        if bar is not None:
            bar.set_postfix_str(summary, refresh=False)
        elif self.log_lines and self.world.is_main:  # with a run directory or without
            print(f"step {self.step}/{self.config.optim.steps} {summary} img/s={record['images_per_s']}", flush=True)

    def _progress_bar(self, total: int):
        """The line that says how training starts, then the bar (None without one)."""
        if self.progress or self.log_lines:
            announce(self.world, self._start_line())
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True)

    def _start_line(self) -> str:
        """What is about to happen, before the first step (the first log line may be minutes away)."""
        config = self.config
        data = config.data.path if config.data.dataset == "folder" else config.runtime.data_dir
        source = f"{self.batches.count:,} images ({config.data.dataset}{f', from {data}' if data else ''})"
        how = f"{self.device}, {torch.get_num_threads()} threads, {config.runtime.precision}, {self.world.describe()}"
        where = f"run directory {self.run_dir}" if self.run_dir is not None else "no run directory"
        return f"training: steps {self.step} -> {config.optim.steps} on {source}; {how}; {where}"

    def render(self, latent: Latent) -> torch.Tensor:
        """Images in [0, 1] for a latent batch, with G in eval mode (batch-norm running stats)."""
        return self.images.render(self.generator, latent)


def _display(progress: bool | str | None, world: World) -> tuple[bool, bool]:
    """(a progress bar, log lines) for a progress choice: "bar" (or True), "lines" (or False),
    "none", or "auto" (or None: a bar when standard error is a terminal). Rank 0 alone shows."""
    choice = progress if isinstance(progress, str) else {True: "bar", False: "lines", None: "auto"}.get(progress)
    if choice not in ("auto", "bar", "lines", "none"):
        raise InfoGANError(f"progress {progress!r} is not one of auto, bar, lines, none (or a function)")
    if choice == "auto":
        choice = "bar" if sys.stderr.isatty() else "lines"
    return choice == "bar" and world.is_main, choice == "lines"


def _compile_options(device: torch.device) -> dict | None:
    """Inductor settings for --compile. On CUDA, inductor's layout optimisation (convolutions
    switched to channels-last) breaks the backward pass of transposed convolutions in
    PyTorch 2.11 (a stride assertion in convolution_backward, pytorch/pytorch#171622), so it is
    turned off there."""
    return {"layout_optimization": False} if device.type == "cuda" else None
