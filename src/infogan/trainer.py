"""The training loop: data batches, logging, progress images, checkpoints and resume."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .augment import draw_transforms
from .config import Config
from .data.batches import InMemoryBatches
from .errors import InfoGANError
from .graphed import GraphedStep
from .latent import Latent, traversal_latents
from .models import build_networks
from .rundir import RunDirectory, check_resumable
from .runtime import resolve_device, use_cuda_graphs
from .training import StepContext, build_optimizers, stat_names, train_step
from .visualize import save_grid, to_unit_range

Callback = Callable[["Trainer"], None]
NONFINITE_CHECK_EVERY = 10
AUGMENT_SEED_OFFSET = 1 << 40  # the transforms' generator: seeded apart from the latents' one
MAX_ROLLBACKS = 3


class NonFiniteError(InfoGANError):
    """Training produced NaN or infinity."""


def diverged_message(what: str, step: int) -> str:
    return (
        f"training diverged: {what} became NaN or infinite by step {step}. "
        "The last good checkpoint is kept; resume from it with lower learning rates "
        "(infogan train --resume --out RUN_DIR --set optim.lr_d=0.0001 --set optim.lr_g=0.0005) "
        "or with --on-nonfinite rollback"
    )


class StatsWindow:
    """Sums of the per-step statistics since the last log line, kept on the device so the
    training loop does not wait for it."""

    def __init__(self, names: list[str], device: torch.device) -> None:
        self.names = names
        self.sums = torch.zeros(len(names), device=device)
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        self.sums += torch.stack([stats[name] for name in self.names])
        self.steps += 1

    def check_finite(self, step: int) -> None:
        finite = torch.isfinite(self.sums)
        if not bool(finite.all()):
            bad = [name for name, ok in zip(self.names, finite.tolist()) if not ok]
            raise NonFiniteError(diverged_message(", ".join(bad), step))

    def flush(self, batch_size: int) -> dict[str, float]:
        """Means since the last flush, plus images per second; then start a new window."""
        seconds = max(time.perf_counter() - self.started, 1e-9)
        means = (self.sums / max(self.steps, 1)).tolist()
        values = {name: round(value, 6) for name, value in zip(self.names, means)}
        values["images_per_s"] = round(self.steps * batch_size / seconds, 1)
        self.sums.zero_()
        self.steps, self.started = 0, time.perf_counter()
        return values


class Trainer:
    """Owns the networks, optimisers and RNG of one run and trains them step by step.

    With a `run_dir` (a path or a `RunDirectory`) it writes there through the run directory:
    the resolved config, the metrics log, progress images and checkpoints, under the run's
    lock; without one it only trains (useful from Python and in tests). How it runs (device,
    bf16, compile, CUDA graphs, what to do on NaN) is `config.runtime`.
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
        cuda_graphs = self.cuda_graphs = use_cuda_graphs(runtime.cuda_graphs, runtime.compile, self.device)
        self.spec = config.latent
        self.run = run_dir if isinstance(run_dir, RunDirectory) or run_dir is None else RunDirectory(run_dir)
        self.progress = sys.stderr.isatty() if progress is None else progress
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            generator, discriminator = build_networks(config.model, self.spec)
        self.generator = generator.to(self.device)
        self.discriminator = discriminator.to(self.device)
        if runtime.compile:  # in place, so state_dict keys (and checkpoints) stay those of the plain modules
            options = _compile_options(self.device)
            self.generator.compile(options=options)
            self.discriminator.compile(options=options)
        self.optimizers = build_optimizers(config, self.generator, self.discriminator, capturable=cuda_graphs)
        self.latent_rng = torch.Generator(self.device).manual_seed(config.seed)
        # the augmented term's transforms have their own stream, so turning it on leaves the latents alone
        self.augment_rng = torch.Generator(self.device).manual_seed(config.seed + AUGMENT_SEED_OFFSET)
        self.batches = InMemoryBatches(
            images, config.optim.batch_size, config.seed, config.model.image_range, self.device
        )
        self.step = 0
        self.rollbacks = 0
        self.stop_requested = False
        self._changes: list[str] = []  # what a resume changed, for the run's history
        self._context = StepContext(
            config,
            self.spec,
            self.generator,
            self.discriminator,
            self.optimizers,
            runtime.precision,
            graph_safe=cuda_graphs,
        )
        self._graphed = GraphedStep(self._context) if cuda_graphs else None
        self._fixed = self._fixed_latents()

    @property
    def run_dir(self) -> Path | None:
        return None if self.run is None else self.run.path

    # -- state -----------------------------------------------------------------------------

    def snapshot(self) -> ckpt.Snapshot:
        return ckpt.Snapshot(
            kind="checkpoint",
            config=self.config,
            step=self.step,
            networks={"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict()},
            optimizers={name: opt.state_dict() for name, opt in self.optimizers.named().items()},
            rng={"latent": self.latent_rng.get_state(), "augment": self.augment_rng.get_state()},
        )

    def restore(self, snapshot: ckpt.Snapshot) -> None:
        """Load networks, optimisers, RNG state and step from a checkpoint of a compatible run.

        Learning rates in this run's config that differ from the checkpoint's config replace the
        optimisers' rates (else the saved rates stay, halved ones after a rollback included).
        """
        if snapshot.kind != "checkpoint":
            raise InfoGANError("an exported model holds no optimiser state; resume from a run's checkpoint")
        self._changes = check_resumable(snapshot.config, self.config)
        ckpt.load_networks({"generator": self.generator, "discriminator": self.discriminator}, snapshot.networks)
        for name, opt in self.optimizers.named().items():
            if name not in snapshot.optimizers:
                raise InfoGANError(f"the checkpoint holds no state for optimiser {name}; it cannot be resumed")
            ckpt.load_optimizer(opt, snapshot.optimizers[name], name)
            for group in opt.param_groups:  # how this run steps, not how the saving run did
                group["capturable"] = self.cuda_graphs
        self._apply_changed_learning_rates(snapshot.config)
        try:
            self.latent_rng.set_state(snapshot.rng["latent"])
            self._restore_augment_rng(snapshot)
        except (KeyError, RuntimeError) as exc:
            raise InfoGANError(f"the checkpoint's random-generator state cannot be used: {exc}") from None
        self.step = snapshot.step
        if self._graphed is not None:  # the graph holds the optimiser state tensors just replaced
            self._graphed.reset()

    def _restore_augment_rng(self, snapshot: ckpt.Snapshot) -> None:
        state = snapshot.rng.get("augment")
        if state is not None:
            self.augment_rng.set_state(state)
        elif self.config.loss.lambda_augmented > 0:  # written before the transforms had their own generator
            print(
                "note: this checkpoint holds no state for the augmented term's transforms (an earlier version "
                "drew them with the latents); they continue from a fresh stream",
                file=sys.stderr,
            )

    def _apply_changed_learning_rates(self, saved: Config) -> None:
        rates = {"d": "lr_d", "g": "lr_g", "info": "lr_info"}
        for name, opt in self.optimizers.named().items():
            key = rates[name]
            new = getattr(self.config.optim, key)
            if new != getattr(saved.optim, key):
                for group in opt.param_groups:
                    group["lr"] = new
                print(f"optim.{key} changed on resume: {getattr(saved.optim, key)} -> {new}", file=sys.stderr)

    def save_checkpoint(self) -> Path:
        """Write a checkpoint for the current step and keep only the newest few.

        Weights or batch-norm statistics that are not finite are never written: the last good
        checkpoint stays newest.
        """
        assert self.run is not None
        for net_name, net in (("generator", self.generator), ("discriminator", self.discriminator)):
            tensors = [("weight", *item) for item in net.named_parameters()]
            tensors += [("batch-norm statistic", *item) for item in net.named_buffers() if item[1].is_floating_point()]
            for kind, name, tensor in tensors:
                if not torch.isfinite(tensor).all():
                    raise NonFiniteError(diverged_message(f"{net_name} {kind} {name}", self.step))
        return self.run.save_checkpoint(self.snapshot(), self.config.logging.keep_checkpoints)

    # -- loop ------------------------------------------------------------------------------

    def train_on(self, real: torch.Tensor, latent: Latent) -> dict[str, torch.Tensor]:
        """One D and G update on a batch of real images and a batch of latents, on the device.

        Returns the step's statistics by name (`training.stat_names(spec, config.loss)`) as tensors on
        the device (read them when you need them: reading waits for the GPU). Does not advance
        `step`; `fit` does.
        With `loss.lambda_augmented` above 0 the step's image transforms are drawn here, from
        the run's own generator for them (`augment_rng`).
        """
        draws = None
        if self.config.loss.lambda_augmented > 0:
            draws = draw_transforms(len(latent), self.config.loss, self.augment_rng, self.device)
        if self._graphed is not None:
            return self._graphed(real, latent, draws)
        return train_step(self._context, real, latent, draws)

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
        window = StatsWindow(stat_names(self.spec, self.config.loss), self.device)
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
        self.restore(snapshot)
        self.rollbacks += 1
        for optimizer in self.optimizers.named().values():
            for group in optimizer.param_groups:
                group["lr"] *= 0.5  # a captured step would keep the old rate: restore reset it
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
            self._save_progress_images()
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

    # -- progress images -------------------------------------------------------------------

    def _fixed_latents(self):
        rng = torch.Generator().manual_seed(self.config.seed + 12345)
        samples = self.spec.sample(100, rng)
        traversals = [traversal_latents(self.spec, name, generator=rng) for name in self.spec.code_names]
        return samples, traversals

    @torch.no_grad()
    def _save_progress_images(self) -> None:
        samples, traversals = self._fixed
        images = self.run.images
        save_grid(self.render(samples), images / f"samples-{self.step:07d}.png", columns=10)
        for name, (latent, columns) in zip(self.spec.code_names, traversals):
            save_grid(self.render(latent), images / f"traverse-{name}-{self.step:07d}.png", columns=columns)

    @torch.no_grad()
    def render(self, latent) -> torch.Tensor:
        """Images in [0, 1] for a latent batch, with G in eval mode (batch-norm running stats)."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            moved = type(latent)(*(t.to(self.device) for t in (latent.noise, latent.categorical, latent.continuous)))
            images = self.generator(self.spec.to_input(moved))
        finally:
            self.generator.train(was_training)
        return to_unit_range(images, self.config.model.image_range).cpu()


def _compile_options(device: torch.device) -> dict | None:
    """Inductor settings for --compile. On CUDA, inductor's layout optimisation (convolutions
    switched to channels-last) breaks the backward pass of transposed convolutions in
    PyTorch 2.11 (a stride assertion in convolution_backward, pytorch/pytorch#171622), so it is
    turned off there."""
    return {"layout_optimization": False} if device.type == "cuda" else None
