"""The training loop, handed its parts: the train state (state.py), the batches (data/), the step
(training.py, or its CUDA graph), the run directory (rundir.py) and what it shows (progress.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .augment import draw_transforms
from .config import Config
from .contrastive import sample_pairs
from .data.batches import InMemoryBatches
from .errors import InfoGANError
from .graphed import GraphedStep
from .latent import Latent
from .progress import ProgressImages, StatsWindow
from .rundir import RunDirectory, check_resumable
from .runtime import resolve_device, use_cuda_graphs
from .state import NonFiniteError, TrainState, diverged_message
from .training import StepContext, stat_names, train_step

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
    """

    def __init__(
        self,
        config: Config,
        images: torch.Tensor,
        run_dir: str | Path | RunDirectory | None = None,
        progress: bool | None = None,
    ) -> None:
        self.config = config
        runtime = config.runtime
        self.device = resolve_device(runtime.device)
        self.cuda_graphs = use_cuda_graphs(runtime.cuda_graphs, runtime.compile, self.device)
        self.spec = config.latent
        self.run = run_dir if isinstance(run_dir, RunDirectory) or run_dir is None else RunDirectory(run_dir)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.state = TrainState.build(config, self.device, capturable=self.cuda_graphs)
        if runtime.compile:  # in place, so state_dict keys (and checkpoints) stay those of the plain modules
            options = _compile_options(self.device)
            self.generator.compile(options=options)
            self.discriminator.compile(options=options)
        self.batches = InMemoryBatches(
            images, config.optim.batch_size, config.seed, config.model.image_range, self.device
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
        )
        self._graphed = GraphedStep(self._context) if self.cuda_graphs else None

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
        if self.state.contrastive is not None and not had_contrastive:
            self._new_context()
        elif self._graphed is not None:  # the graph holds the optimiser state tensors just replaced
            self._graphed.reset()

    def save_checkpoint(self) -> Path:
        """Write a checkpoint for the current step and keep only the newest few.

        Weights or batch-norm statistics that are not finite are never written: the last good
        checkpoint stays newest.
        """
        assert self.run is not None
        self.state.check_finite(self.step)
        return self.run.save_checkpoint(self.snapshot(), self.config.logging.keep_checkpoints)

    # -- loop ------------------------------------------------------------------------------

    def train_on(self, real: torch.Tensor, latent: Latent) -> dict[str, torch.Tensor]:
        """One training step (`training.train_step`) on a batch of real images and a batch of
        latents, on the device, at the current `step`.

        Returns the step's statistics by name (`training.stat_names(config)`) as tensors on the
        device (read them when you need them: reading waits for the GPU). Does not advance
        `step`; `fit` does. With `loss.lambda_augmented` above 0 the step's image transforms
        are drawn here, from the run's own generator for them (`augment_rng`); once the
        contrastive regulariser is active, H is created (the first time) and the step's pairs
        are drawn from `pairs_rng`.
        """
        draws = pairs = None
        if self.config.loss.lambda_augmented > 0:
            draws = draw_transforms(len(latent), self.config.loss, self.augment_rng, self.device)
        contrastive = self.config.contrastive
        if contrastive.active(self.step):
            if self.state.contrastive is None:
                self.state.start_contrastive(self.config, capturable=self.cuda_graphs)
                self._new_context()
            gap = contrastive.gap_at(self.step)
            pairs = sample_pairs(self.spec, len(latent), gap, self.state.pairs_rng, self.device)
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
        if self.run is not None:
            self.run.lock()
            self.run.prepare(self.config, self.step, self._changes)
            if self.config.logging.tensorboard:
                self.run.open_tensorboard()
        self.stop_requested = False
        bar = self._progress_bar(self.config.optim.steps)
        try:
            while True:
                try:
                    return self._loop(callbacks, bar)
                except NonFiniteError:
                    if self.config.runtime.on_nonfinite == "stop" or not self._roll_back():
                        raise
                except OSError as exc:  # metrics, images: checkpoints raise InfoGANError themselves
                    raise InfoGANError(
                        f"cannot write to the run directory {self.run_dir}: {exc.strerror or exc}; "
                        "free disk space or fix its permissions, then resume with --resume"
                    ) from None
        finally:
            if bar is not None:
                bar.close()
            if self.run is not None:
                self.run.close()
                if owns_lock:
                    self.run.unlock()

    def _loop(self, callbacks: Sequence[Callback], bar) -> bool:
        total = self.config.optim.steps
        window = StatsWindow(stat_names(self.config), self.device)
        while self.step < total:
            latent = self.spec.sample(self.config.optim.batch_size, self.latent_rng, self.device)
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
            if self.stop_requested and self.step < total:
                if self.run is not None:
                    self.save_checkpoint()
                return False
        return True

    def _roll_back(self) -> bool:
        """Return to the newest checkpoint with halved learning rates; False when impossible."""
        if self.run is None or self.rollbacks >= MAX_ROLLBACKS or not self.run.has_run():
            return False
        snapshot, path = self.run.latest_valid()
        self.restore(snapshot)  # resets a captured step, which would keep the old rates
        self.rollbacks += 1
        self.state.halve_learning_rates()
        print(
            f"non-finite values: rolled back to {path.name} (step {self.step}) with learning rates halved "
            f"(rollback {self.rollbacks} of {MAX_ROLLBACKS})",
            file=sys.stderr,
            flush=True,
        )
        return True

    def _periodic_outputs(self, total: int) -> None:
        if self.run is None:
            return
        logging = self.config.logging
        if self.step % logging.image_every == 0 or self.step == total:
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
        elif self.run is not None:
            print(f"step {self.step}/{self.config.optim.steps} {summary} img/s={record['images_per_s']}", flush=True)

    def _progress_bar(self, total: int):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True)

    def render(self, latent: Latent) -> torch.Tensor:
        """Images in [0, 1] for a latent batch, with G in eval mode (batch-norm running stats)."""
        return self.images.render(self.generator, latent)


def _compile_options(device: torch.device) -> dict | None:
    """Inductor settings for --compile. On CUDA, inductor's layout optimisation (convolutions
    switched to channels-last) breaks the backward pass of transposed convolutions in
    PyTorch 2.11 (a stride assertion in convolution_backward, pytorch/pytorch#171622), so it is
    turned off there."""
    return {"layout_optimization": False} if device.type == "cuda" else None
