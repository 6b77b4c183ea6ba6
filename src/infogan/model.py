"""A trained model for use: generate images with chosen codes, encode images into codes, export."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import torch
from torch import nn

import infogan.checkpoint as ckpt
from infogan.config import Config
from infogan.core.latent import Latent
from infogan.core.networks import QOutput, build_networks
from infogan.core.networks.heads import to_unit_range
from infogan.errors import InfoGANError
from infogan.fileio import remove_leftovers, write_bytes_atomically, write_error
from infogan.runtime import resolve_device

CALIBRATION_IMAGES = 2560  # generated images whose batch statistics D's batch norm is set to
MAX_GENERATE_BYTES = 4 * 2**30  # the most one `generate` call returns (images and their latents, float32)
EXPORT_FILES = ("model.safetensors", "config.json")


class InfoGAN:
    """Generator and discriminator-with-Q of a trained model, in eval mode.

    Images going in and out are floats in [0, 1] of shape (N, C, H, W); uint8 images in
    [0, 255] are accepted as input too. The discriminator's batch-norm statistics are
    recomputed from generated batches (`calibrate_batch_norm`) the first time the
    discriminator is used, so generating images alone never pays for it. That first use is
    safe from several threads at once (the explorer encodes uploads in a thread pool): one
    thread calibrates while the others wait for it.
    """

    def __init__(
        self, config: Config, generator: nn.Module, discriminator: nn.Module, step: int = 0, calibrate: bool = True
    ):
        self.config = config
        self.spec = config.latent
        self.generator = generator.eval()
        self._discriminator = discriminator.eval()
        self.step = step
        self._needs_calibration = calibrate
        self._calibration_lock = threading.Lock()

    @property
    def discriminator(self) -> nn.Module:
        """D with Q, in eval mode; batch norm calibrated on first access (unless built with
        `calibrate=False`)."""
        if self._needs_calibration:
            with self._calibration_lock:
                if self._needs_calibration:  # not calibrated by a thread that held the lock first
                    self._calibrate(CALIBRATION_IMAGES, seed=0)
        return self._discriminator

    def calibrate_batch_norm(self, images: int = CALIBRATION_IMAGES, seed: int = 0) -> None:
        """Set the running statistics of batch norm in D's trunk and Q head to their average
        over generated batches of the training batch size, under the current weights.

        In training Q only ever sees generated batches normalised by their own statistics; the
        running statistics training leaves behind are an average over recent steps' weights
        and over real and generated batches, and they can be far from that (benchmarks/results
        has the measured difference on dSprites). Deterministic: the latents come from a
        generator seeded with `seed`.
        """
        with self._calibration_lock:
            self._calibrate(images, seed)

    @torch.no_grad()
    def _calibrate(self, images: int, seed: int) -> None:
        """`calibrate_batch_norm` for a caller that holds the lock."""
        norms = [m for m in self._discriminator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            self._needs_calibration = False
            return
        momenta = [m.momentum for m in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over the batches below
        batch = self.config.optim.batch_size
        rng = torch.Generator().manual_seed(seed)
        self._discriminator.train()
        try:
            for _ in range(max(1, images // batch)):
                inputs = self.spec.to_input(self.spec.sample(batch, rng)).to(self.device)
                self._discriminator(self.generator(inputs), with_q=True)
        finally:
            self._discriminator.eval()
            for norm, momentum in zip(norms, momenta):
                norm.momentum = momentum
        self._needs_calibration = False

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @classmethod
    def from_snapshot(cls, snapshot: ckpt.Snapshot, device: str | torch.device = "cpu") -> InfoGAN:
        spec = snapshot.config.latent
        generator, discriminator = build_networks(snapshot.config.model, spec)
        networks = {"generator": generator, "discriminator": discriminator}
        ckpt.load_networks(networks, snapshot.networks, widen_half=snapshot.kind == "export")
        device = resolve_device(device)
        return cls(snapshot.config, generator.to(device), discriminator.to(device), snapshot.step)

    # -- generate --------------------------------------------------------------------------

    def sample_latent(
        self, n: int, codes: dict[str, float | int] | None = None, generator: torch.Generator | None = None
    ) -> Latent:
        """`n` latents from the priors (drawn with `generator`), with `codes` fixed where given."""
        if n < 1:
            raise InfoGANError(f"the number of images must be 1 or more, got {n}")
        latent = self.spec.sample(n, generator)
        return self.spec.with_codes(latent, codes or {})

    @torch.no_grad()
    def generate_from(self, latent: Latent, batch_size: int = 1000) -> torch.Tensor:
        """Images in [0, 1] for the given latents."""
        inputs = self.spec.to_input(latent)
        outputs = [self.generator(chunk.to(self.device)).cpu() for chunk in inputs.split(batch_size)]
        return to_unit_range(torch.cat(outputs), self.config.model.image_range)

    def generate(
        self,
        n: int = 16,
        codes: dict[str, float | int] | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """`n` images; `codes` like {"c1": 7, "c2": 0.5} fixes codes, the rest are random.

        Randomness comes from `generator`, else from a generator seeded with `seed` (default 0),
        so the same call gives the same images. One call makes at most MAX_GENERATE_BYTES of
        images (and their latents); generate more in batches.
        """
        self._check_count(n)
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        return self.generate_from(self.sample_latent(n, codes, generator))

    def _check_count(self, n: int) -> None:
        """Refuse a number of images whose tensors alone would take more than MAX_GENERATE_BYTES."""
        model = self.config.model
        shape = (model.image_channels, model.image_size, model.image_size)
        size = n * (shape[0] * shape[1] * shape[2] + self.spec.input_dim) * 4
        if size > MAX_GENERATE_BYTES:
            most = MAX_GENERATE_BYTES // (size // n)
            raise InfoGANError(
                f"{n:,} images of {'x'.join(map(str, shape))} would take about {size / 1e9:.1f} GB of memory; one "
                f"call makes at most {most:,} ({MAX_GENERATE_BYTES / 1e9:.1f} GB): generate fewer, in batches"
            )

    # -- encode ----------------------------------------------------------------------------

    @torch.no_grad()
    def q_output(self, images: torch.Tensor, batch_size: int = 1000) -> QOutput:
        """Q's raw output (logits, means, log-stds) for images."""
        images = self._prepare(images)
        parts = [self.discriminator(chunk.to(self.device), with_q=True)[1] for chunk in images.split(batch_size)]
        return QOutput(
            [torch.cat([p.categorical_logits[i] for p in parts]).cpu() for i in range(len(self.spec.categorical))],
            torch.cat([p.continuous_mean for p in parts]).cpu(),
            torch.cat([p.continuous_log_std for p in parts]).cpu(),
        )

    def encode(self, images: torch.Tensor, batch_size: int = 1000) -> dict[str, torch.Tensor]:
        """Predicted codes per image: the most likely value of each categorical code (N,) and
        Q's mean of each continuous code (N,)."""
        q = self.q_output(images, batch_size)
        codes = {name: q.categorical_logits[i].argmax(dim=1) for i, name in enumerate(self.spec.categorical_names)}
        codes.update({name: q.continuous_mean[:, i] for i, name in enumerate(self.spec.continuous_names)})
        return codes

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        model = self.config.model
        if images.ndim == 3 and model.image_channels == 1:
            images = images.unsqueeze(1)
        expected = (model.image_channels, model.image_size, model.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise InfoGANError(
                f"images have shape {tuple(images.shape)}; this model takes (N, {', '.join(map(str, expected))})"
            )
        images = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        low, high = model.image_range
        return images * (high - low) + low

    # -- export ----------------------------------------------------------------------------

    def export(self, folder: str | Path, overwrite: bool = False, half: bool = False) -> Path:
        """Write `model.safetensors` (weights) and `config.json` to `folder`; no pickle involved.

        A folder that holds an export already is refused unless `overwrite`. `half` stores the
        floating-point weights and batch-norm statistics as float16 (half the file; `load`
        widens them back to float32, which is exact); a value beyond float16's range is refused.
        """
        folder = Path(folder)
        if not overwrite and any((folder / name).exists() for name in EXPORT_FILES):
            raise InfoGANError(f"{folder} holds an export already; choose another folder or overwrite it (--force)")
        networks = {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict()}
        snapshot = ckpt.Snapshot(
            kind="export",
            config=self.config,
            step=self.step,
            networks={name: ckpt.halved(state, name) for name, state in networks.items()} if half else networks,
            optimizers={},
            rng={},
        )
        text = json.dumps(self.config.to_dict(), indent=2) + "\n"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            remove_leftovers(folder, names=EXPORT_FILES)  # the folder may hold the user's files: only ours go
            ckpt.save_snapshot(folder / "model.safetensors", snapshot)
            write_bytes_atomically(folder / "config.json", text.encode("utf-8"))
        except OSError as exc:
            raise write_error(exc, exc.filename or folder, "the export") from None
        return folder


def load(path: str | Path, device: str | torch.device = "cpu") -> InfoGAN:
    """Load a model from a run directory (newest checkpoint), an export folder, a .safetensors
    file or a shipped model's name (`infogan.shipped_models()`), onto `device` ("auto", "cpu",
    "cuda", "cuda:N")."""
    resolve_device(device)  # a device that cannot be used here fails before any file is read
    return InfoGAN.from_snapshot(ckpt.load_model(path), device)
