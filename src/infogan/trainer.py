"""The training loop: data batches, logging, progress images, checkpoints and resume."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .config import Config, save_config
from .errors import InfoGANError
from .latent import LatentSpec, traversal_latents
from .models import build_networks
from .training import StepContext, build_optimizers, stat_names, train_step
from .visualize import save_grid

Callback = Callable[["Trainer"], None]


class InMemoryBatches:
    """Batches sliced from a uint8 image tensor, in an order that depends only on (seed, step).

    Each epoch is a fresh permutation drawn from a generator seeded by the seed and the epoch,
    so a resumed run sees exactly the batches an uninterrupted one would.
    """

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, image_range: tuple[float, float]):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise InfoGANError("training images must be a uint8 tensor of shape (N, C, H, W)")
        if images.shape[0] < batch_size:
            raise InfoGANError(
                f"the data set has {images.shape[0]} images, fewer than the batch size {batch_size}; "
                "lower optim.batch_size or use more images"
            )
        self.images = images
        self.batch_size = batch_size
        self.seed = seed
        self.low, self.high = image_range
        self.per_epoch = images.shape[0] // batch_size
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.long)

    def batch(self, step: int) -> torch.Tensor:
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            rng = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(self.images.shape[0], generator=rng).to(self.images.device)
            self._epoch = epoch
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        pixels = self.images.index_select(0, rows).float()
        return pixels * ((self.high - self.low) / 255.0) + self.low


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InfoGANError("--device cuda was asked for, but PyTorch sees no CUDA GPU; use --device cpu")
    return device


class Trainer:
    """Owns the networks, optimisers and RNG of one run and trains them step by step.

    With a `run_dir` it writes the resolved config, a JSON-lines metrics log, progress images
    and checkpoints there; without one it only trains (useful from Python and in tests).
    """

    def __init__(
        self,
        config: Config,
        images: torch.Tensor,
        run_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        progress: bool | None = None,
    ) -> None:
        self.config = config
        self.device = _resolve_device(device)
        self.spec = LatentSpec.from_config(config.latent)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = sys.stderr.isatty() if progress is None else progress
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            generator, discriminator = build_networks(config.model, self.spec)
        self.generator = generator.to(self.device)
        self.discriminator = discriminator.to(self.device)
        self.optimizers = build_optimizers(config, self.generator, self.discriminator)
        self.latent_rng = torch.Generator(self.device).manual_seed(config.seed)
        self.batches = InMemoryBatches(
            images.to(self.device), config.optim.batch_size, config.seed, config.model.image_range
        )
        self.step = 0
        self._context = StepContext(config, self.spec, self.generator, self.discriminator, self.optimizers)
        self._fixed = self._fixed_latents()
        self._writer = None

    # -- state -----------------------------------------------------------------------------

    def snapshot(self) -> ckpt.Snapshot:
        return ckpt.Snapshot(
            kind="checkpoint",
            config=self.config,
            step=self.step,
            networks={"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict()},
            optimizers={name: opt.state_dict() for name, opt in self.optimizers.named().items()},
            rng={"latent": self.latent_rng.get_state()},
        )

    def restore(self, snapshot: ckpt.Snapshot) -> None:
        """Load networks, optimisers, RNG state and step from a checkpoint of a compatible run."""
        check_resumable(snapshot.config, self.config)
        if snapshot.kind != "checkpoint":
            raise InfoGANError("an exported model holds no optimiser state; resume from a run's checkpoint")
        self.generator.load_state_dict(snapshot.networks["generator"])
        self.discriminator.load_state_dict(snapshot.networks["discriminator"])
        for name, opt in self.optimizers.named().items():
            opt.load_state_dict(snapshot.optimizers[name])
        self.latent_rng.set_state(snapshot.rng["latent"])
        self.step = snapshot.step

    def save_checkpoint(self) -> Path:
        """Write a checkpoint for the current step and keep only the newest few."""
        assert self.run_dir is not None
        path = self.run_dir / "checkpoints" / f"step-{self.step:07d}.safetensors"
        ckpt.save_snapshot(path, self.snapshot())
        for old in ckpt.checkpoint_paths(self.run_dir)[: -self.config.logging.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path

    # -- loop ------------------------------------------------------------------------------

    def fit(self, callbacks: Sequence[Callback] = ()) -> None:
        """Train until `config.optim.steps`; a Ctrl-C still leaves a checkpoint behind."""
        if self.run_dir is not None:
            self._prepare_run_dir()
        total = self.config.optim.steps
        names = stat_names(self.spec)
        window = torch.zeros(len(names), device=self.device)
        window_steps, window_start = 0, time.perf_counter()
        bar = self._progress_bar(total)
        try:
            while self.step < total:
                latent = self.spec.sample(self.config.optim.batch_size, self.latent_rng, self.device)
                window += train_step(self._context, self.batches.batch(self.step), latent)
                self.step += 1
                window_steps += 1
                if bar is not None:
                    bar.update(1)
                if self.step % self.config.logging.log_every == 0 or self.step == total:
                    self._log(names, window / window_steps, window_steps, time.perf_counter() - window_start, bar)
                    window.zero_()
                    window_steps, window_start = 0, time.perf_counter()
                self._periodic_outputs(total)
                for callback in callbacks:
                    callback(self)
        except KeyboardInterrupt:
            if self.run_dir is not None:
                self.save_checkpoint()
            raise
        finally:
            if bar is not None:
                bar.close()
            if self._writer is not None:
                self._writer.close()

    def _periodic_outputs(self, total: int) -> None:
        if self.run_dir is None:
            return
        logging = self.config.logging
        if self.step % logging.image_every == 0 or self.step == total:
            self._save_progress_images()
        if self.step % logging.checkpoint_every == 0 or self.step == total:
            self.save_checkpoint()

    def _log(self, names, means: torch.Tensor, steps: int, seconds: float, bar) -> None:
        record = {"step": self.step, **dict(zip(names, (round(v, 6) for v in means.tolist())))}
        record["images_per_s"] = round(steps * self.config.optim.batch_size / max(seconds, 1e-9), 1)
        if self.run_dir is not None:
            with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            if self._writer is not None:
                for key, value in record.items():
                    if key != "step":
                        self._writer.add_scalar(key, value, self.step)
        summary = " ".join(f"{k}={v:.3f}" for k, v in record.items() if k not in ("step", "images_per_s"))
        if bar is not None:
            bar.set_postfix_str(summary, refresh=False)
        elif self.run_dir is not None:
            print(f"step {self.step}/{self.config.optim.steps} {summary} img/s={record['images_per_s']}", flush=True)

    def _progress_bar(self, total: int):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True)

    # -- run directory ---------------------------------------------------------------------

    def _prepare_run_dir(self) -> None:
        run_dir = self.run_dir
        try:
            (run_dir / "images").mkdir(parents=True, exist_ok=True)
            save_config(self.config, run_dir / "config.yaml")
        except OSError as exc:
            raise InfoGANError(f"cannot write to the run directory {run_dir}: {exc.strerror or exc}") from None
        _truncate_metrics(run_dir / "metrics.jsonl", self.step)
        if self.config.logging.tensorboard and self._writer is None:
            self._writer = _tensorboard_writer(run_dir / "tensorboard")

    def _fixed_latents(self):
        rng = torch.Generator().manual_seed(self.config.seed + 12345)
        samples = self.spec.sample(100, rng)
        traversals = [traversal_latents(self.spec, name, generator=rng) for name in self.spec.code_names]
        return samples, traversals

    @torch.no_grad()
    def _save_progress_images(self) -> None:
        samples, traversals = self._fixed
        images = self.run_dir / "images"
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
        low, high = self.config.model.image_range
        return ((images - low) / (high - low)).clamp(0, 1).cpu()


def check_resumable(saved: Config, requested: Config) -> None:
    """Refuse to resume when anything but the length of training or logging changed."""
    saved_data, requested_data = saved.to_dict(), requested.to_dict()
    for data in (saved_data, requested_data):
        data["optim"].pop("steps")
        data.pop("logging")
    if saved_data != requested_data:
        changed = _changed_keys(saved_data, requested_data)
        raise InfoGANError(
            "cannot resume: the config differs from the checkpoint's in "
            + ", ".join(changed)
            + ". Only optim.steps and logging.* may change on resume; start a new run for the rest."
        )


def _changed_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            keys += _changed_keys(a[key], b[key], f"{prefix}{key}.")
        elif a.get(key) != b.get(key):
            keys.append(f"{prefix}{key} ({a.get(key)!r} -> {b.get(key)!r})")
    return keys


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines past `step` (written after the checkpoint a resumed run starts from)."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))
