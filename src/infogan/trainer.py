"""The training loop: data batches, logging, progress images, checkpoints and resume."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .augment import draw_transforms
from .config import Config, save_config
from .errors import InfoGANError
from .graphed import GraphedStep
from .latent import Latent, LatentSpec, traversal_latents
from .models import build_networks
from .training import PRECISIONS, StepContext, build_optimizers, stat_names, train_step
from .visualize import save_grid, to_unit_range

Callback = Callable[["Trainer"], None]
NONFINITE_CHECK_EVERY = 10
MAX_ROLLBACKS = 3


class NonFiniteError(InfoGANError):
    """Training produced NaN or infinity."""


def diverged_message(what: str, step: int) -> str:
    return (
        f"training diverged: {what} became NaN or infinite by step {step}. "
        "The last good checkpoint is kept; resume from it with lower learning rates "
        "(e.g. --set optim.lr_d=0.0001 --set optim.lr_g=0.0005) or train with --on-nonfinite rollback"
    )


class StatsWindow:
    """Sums of the per-step statistics since the last log line, kept on the device so the
    training loop does not wait for it."""

    def __init__(self, names: list[str], device: torch.device) -> None:
        self.names = names
        self.sums = torch.zeros(len(names), device=device)
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, stats: torch.Tensor) -> None:
        self.sums += stats
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


class InMemoryBatches:
    """Batches drawn from in-memory images, in an order that depends only on (seed, step).

    `images` is a uint8 tensor (N, C, H, W), moved to `device` once, or any object with
    `len()` and `gather(rows) -> uint8 tensor` (such as bit-packed dSprites, unpacked per batch).
    Each epoch is a fresh permutation drawn from a generator seeded by the seed and the epoch,
    so a resumed run sees exactly the batches an uninterrupted one would.
    """

    def __init__(
        self,
        images,
        batch_size: int,
        seed: int,
        image_range: tuple[float, float],
        device: str | torch.device = "cpu",
    ):
        device = torch.device(device)
        if isinstance(images, torch.Tensor):
            if images.dtype != torch.uint8 or images.ndim != 4:
                raise InfoGANError("training images must be a uint8 tensor of shape (N, C, H, W)")
            stored = images.to(device)
            self._gather = lambda rows: stored.index_select(0, rows)
            self._order_device = device
        else:
            self._gather = lambda rows: images.gather(rows).to(device)
            self._order_device = torch.device("cpu")
        self.count = len(images)
        if self.count < batch_size:
            raise InfoGANError(
                f"the data set has {self.count} images, fewer than the batch size {batch_size}; "
                "lower optim.batch_size or use more images"
            )
        self.batch_size = batch_size
        self.seed = seed
        self.low, self.high = image_range
        self.per_epoch = self.count // batch_size
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.long)

    def batch(self, step: int) -> torch.Tensor:
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            rng = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(self.count, generator=rng).to(self._order_device)
            self._epoch = epoch
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        pixels = self._gather(rows).float()
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
    `precision="bf16"` trains under bfloat16 autocast, `compile=True` compiles the networks, and
    on a CUDA device each step is replayed from a CUDA graph unless `cuda_graphs=False` (or
    `compile`); `cuda_graphs=True` elsewhere is an error.
    """

    def __init__(
        self,
        config: Config,
        images: torch.Tensor,
        run_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        progress: bool | None = None,
        precision: str = "fp32",
        compile: bool = False,
        cuda_graphs: bool | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise InfoGANError(f"precision is {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.config = config
        self.device = _resolve_device(device)
        cuda_graphs = self.cuda_graphs = _use_cuda_graphs(cuda_graphs, compile, self.device)
        self.spec = LatentSpec.from_config(config.latent)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = sys.stderr.isatty() if progress is None else progress
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            generator, discriminator = build_networks(config.model, self.spec)
        self.generator = generator.to(self.device)
        self.discriminator = discriminator.to(self.device)
        if compile:  # in place, so state_dict keys (and checkpoints) stay those of the plain modules
            options = _compile_options(self.device)
            self.generator.compile(options=options)
            self.discriminator.compile(options=options)
        self.optimizers = build_optimizers(config, self.generator, self.discriminator, capturable=cuda_graphs)
        self.latent_rng = torch.Generator(self.device).manual_seed(config.seed)
        self.batches = InMemoryBatches(
            images, config.optim.batch_size, config.seed, config.model.image_range, self.device
        )
        self.step = 0
        self.rollbacks = 0
        self.stop_requested = False
        self._context = StepContext(
            config, self.spec, self.generator, self.discriminator, self.optimizers, precision, graph_safe=cuda_graphs
        )
        self._graphed = GraphedStep(self._context) if cuda_graphs else None
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
        try:
            self.generator.load_state_dict(snapshot.networks["generator"])
            self.discriminator.load_state_dict(snapshot.networks["discriminator"])
            for name, opt in self.optimizers.named().items():
                opt.load_state_dict(snapshot.optimizers[name])
                for group in opt.param_groups:  # how this run steps, not how the saving run did
                    group["capturable"] = self.cuda_graphs
            self.latent_rng.set_state(snapshot.rng["latent"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise InfoGANError(f"the checkpoint does not fit the model its config describes: {exc}") from None
        self.step = snapshot.step
        if self._graphed is not None:  # the graph holds the optimiser state tensors just replaced
            self._graphed.reset()

    def save_checkpoint(self) -> Path:
        """Write a checkpoint for the current step and keep only the newest few.

        Weights that are not finite are never written: the last good checkpoint stays newest.
        """
        assert self.run_dir is not None
        for net_name, net in (("generator", self.generator), ("discriminator", self.discriminator)):
            for name, param in net.named_parameters():
                if not torch.isfinite(param).all():
                    raise NonFiniteError(diverged_message(f"{net_name} weight {name}", self.step))
        path = self.run_dir / "checkpoints" / f"step-{self.step:07d}.safetensors"
        ckpt.save_snapshot(path, self.snapshot())
        for old in ckpt.checkpoint_paths(self.run_dir)[: -self.config.logging.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path

    # -- loop ------------------------------------------------------------------------------

    def train_on(self, real: torch.Tensor, latent: Latent) -> torch.Tensor:
        """One D and G update on a batch of real images and a batch of latents, on the device.

        Returns the statistics named by `training.stat_names(spec, config.loss)` as one tensor on the device (read
        it when you need it: reading waits for the GPU). Does not advance `step`; `fit` does.
        With `loss.lambda_augmented` above 0 the step's image transforms are drawn here, from
        the run's latent generator.
        """
        draws = None
        if self.config.loss.lambda_augmented > 0:
            draws = draw_transforms(len(latent), self.config.loss, self.latent_rng, self.device)
        if self._graphed is not None:
            return self._graphed(real, latent, draws)
        return train_step(self._context, real, latent, draws)

    def request_stop(self) -> None:
        """Ask `fit` to stop after the current step (and write a checkpoint there)."""
        self.stop_requested = True

    def fit(self, callbacks: Sequence[Callback] = (), on_nonfinite: str = "stop") -> bool:
        """Train until `config.optim.steps`; True when it got there, False when stopped early.

        Non-finite losses are checked every few steps. With on_nonfinite="stop" they raise
        `NonFiniteError`; with "rollback" training goes back to the newest checkpoint, halves
        every learning rate and carries on (at most MAX_ROLLBACKS times).
        """
        if on_nonfinite not in ("stop", "rollback"):
            raise ValueError(f"on_nonfinite must be 'stop' or 'rollback', got {on_nonfinite!r}")
        if self.run_dir is not None:
            self._prepare_run_dir()
        self.stop_requested = False
        bar = self._progress_bar(self.config.optim.steps)
        try:
            while True:
                try:
                    return self._loop(callbacks, bar)
                except NonFiniteError:
                    if on_nonfinite == "stop" or not self._roll_back():
                        raise
                except OSError as exc:  # metrics, images: checkpoints raise InfoGANError themselves
                    raise InfoGANError(
                        f"cannot write to the run directory {self.run_dir}: {exc.strerror or exc}; "
                        "free disk space or fix its permissions, then resume with --resume"
                    ) from None
        finally:
            if bar is not None:
                bar.close()
            if self._writer is not None:
                self._writer.close()
                self._writer = None

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
                if self.run_dir is not None:
                    self.save_checkpoint()
                return False
        return True

    def _roll_back(self) -> bool:
        """Return to the newest checkpoint with halved learning rates; False when impossible."""
        if self.run_dir is None or self.rollbacks >= MAX_ROLLBACKS or not ckpt.checkpoint_paths(self.run_dir):
            return False
        snapshot, path = ckpt.load_latest_valid(self.run_dir)
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
        if self.run_dir is None:
            return
        logging = self.config.logging
        if self.step % logging.image_every == 0 or self.step == total:
            self._save_progress_images()
        if self.step % logging.checkpoint_every == 0 or self.step == total:
            self.save_checkpoint()

    def _log(self, values: dict[str, float], bar) -> None:
        record = {"step": self.step, **values}
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
        ckpt.remove_partial_files(run_dir)
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
        return to_unit_range(images, self.config.model.image_range).cpu()


def _compile_options(device: torch.device) -> dict | None:
    """Inductor settings for --compile. On CUDA, inductor's layout optimisation (convolutions
    switched to channels-last) breaks the backward pass of transposed convolutions in
    PyTorch 2.11 (a stride assertion in convolution_backward, pytorch/pytorch#171622), so it is
    turned off there."""
    return {"layout_optimization": False} if device.type == "cuda" else None


def _use_cuda_graphs(asked: bool | None, compile: bool, device: torch.device) -> bool:
    """None (the default): CUDA graphs on a CUDA GPU unless compiling; True: on, or a clear error."""
    if asked is None:
        return device.type == "cuda" and not compile
    if asked and device.type != "cuda":
        raise InfoGANError(f"--cuda-graphs needs a CUDA GPU, but the device is {device.type}; use --device cuda")
    if asked and compile:
        raise InfoGANError("--cuda-graphs and --compile do not go together; choose one")
    return asked


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
