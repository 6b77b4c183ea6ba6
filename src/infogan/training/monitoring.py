"""What a run shows while it trains: the statistics window behind each log line, and progress
images drawn from fixed latents."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from infogan.core.latent import Latent, LatentSpec, traversal_latents
from infogan.core.networks.heads import to_unit_range
from infogan.training.ranks import World, mark_every_rank
from infogan.training.state import NonFiniteError, diverged_message
from infogan.viz.figures import save_grid

FIXED_LATENT_SEED_OFFSET = 12345  # the progress images' latents: fixed per run, apart from training's


class StatsWindow:
    """Sums of the per-step statistics since the last log line, kept on the device so the
    training loop does not wait for it. A statistic a step does not return (the contrastive
    regulariser's before it starts) is averaged over the steps that did, and left out of a
    log line that no step of its window returned. With several ranks (`world`), the sums are
    summed over the ranks before they are checked (a NaN on any rank is seen by all) and
    averaged before they are logged."""

    def __init__(self, names: list[str], device: torch.device, world: World | None = None) -> None:
        self.world = world or World()
        self.names = names
        self.sums = torch.zeros(len(names), device=device)
        self.counts = [0] * len(names)
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        if all(name in stats for name in self.names):
            self.sums += torch.stack([stats[name] for name in self.names])
            self.counts = [count + 1 for count in self.counts]
        else:
            zero = self.sums.new_zeros(())
            self.sums += torch.stack([stats.get(name, zero) for name in self.names])
            self.counts = [count + (name in stats) for count, name in zip(self.counts, self.names)]
        self.steps += 1

    def check_finite(self, step: int) -> None:
        if self.world.size == 1:
            finite = torch.isfinite(self.sums)
        else:  # every rank learns which statistics went bad on any rank, and raises at this step
            finite = self.world.sum_((~torch.isfinite(self.sums)).float()) == 0
        if not bool(finite.all()):
            bad = [name for name, ok in zip(self.names, finite.tolist()) if not ok]
            raise mark_every_rank(NonFiniteError(diverged_message(", ".join(bad), step)))

    def flush(self, batch_size: int) -> dict[str, float]:
        """Means since the last flush (over the ranks too), plus images per second (`batch_size`
        being the global batch); then start a new window."""
        seconds = max(time.perf_counter() - self.started, 1e-9)
        sums = self.sums if self.world.size == 1 else self.world.sum_(self.sums.clone()) / self.world.size
        sums = sums.tolist()
        values = {
            name: round(total / count, 6) for name, total, count in zip(self.names, sums, self.counts) if count > 0
        }
        values["images_per_s"] = round(self.steps * batch_size / seconds, 1)
        self.sums.zero_()
        self.counts = [0] * len(self.names)
        self.steps, self.started = 0, time.perf_counter()
        return values


class ProgressImages:
    """A 10x10 sample grid and one traversal per code, from latents fixed for the whole run."""

    def __init__(self, spec: LatentSpec, seed: int, image_range: tuple[float, float]) -> None:
        self.spec = spec
        self.image_range = image_range
        rng = torch.Generator().manual_seed(seed + FIXED_LATENT_SEED_OFFSET)
        self.samples = spec.sample(100, rng)
        self.traversals = [traversal_latents(spec, name, generator=rng) for name in spec.code_names]

    @torch.no_grad()
    def save(self, generator: nn.Module, folder: Path, step: int) -> None:
        save_grid(self.render(generator, self.samples), folder / f"samples-{step:07d}.png", columns=10)
        for name, (latent, columns) in zip(self.spec.code_names, self.traversals):
            save_grid(self.render(generator, latent), folder / f"traverse-{name}-{step:07d}.png", columns=columns)

    @torch.no_grad()
    def render(self, generator: nn.Module, latent: Latent) -> torch.Tensor:
        """Images in [0, 1] for a latent batch, with G in eval mode (batch-norm running stats)."""
        device = next(generator.parameters()).device
        was_training = generator.training
        generator.eval()
        try:
            moved = Latent(*(t.to(device) for t in (latent.noise, latent.categorical, latent.continuous)))
            images = generator(self.spec.to_input(moved))
        finally:
            generator.train(was_training)
        return to_unit_range(images, self.image_range).cpu()
