"""InfoGAN-CR's contrastive regulariser (Lin et al. 2020): the config's `contrastive` section and
the pairs of latents it trains on.

A third network H sees two generated images stacked as channels and says which code the pair
shares. A pair shares its noise and one code chosen uniformly; every other code is drawn
independently for each image, continuous codes at least `gap` apart. H minimises the
cross-entropy of its guess; G adds `alpha` times the same cross-entropy to its loss, so G
learns to make each code change something H can see apart from what the other codes change.
H and its optimiser are created at `start_step` (nothing runs before), and are checkpointed
like the other networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from infogan.core.latent import Latent, LatentSpec
from infogan.errors import require


@dataclass(frozen=True)
class ContrastiveConfig:
    """alpha: weight of H's cross-entropy in G's loss (0: off). start_step: the step H starts.
    lr: H's Adam learning rate (beta1, beta2 those of `optim`). gap: the least distance between
    a pair's values of each continuous code it does not share, at start_step; gap_decrease:
    taken off the gap every gap_every steps after that, down to 0."""

    alpha: float = 0.0
    start_step: int = 0
    lr: float = 2e-3
    gap: float = 0.0
    gap_decrease: float = 0.0
    gap_every: int = 1000

    def __post_init__(self) -> None:
        require(0 <= self.alpha < math.inf, "contrastive.alpha", "must be 0 (off) or more")
        require(self.start_step >= 0, "contrastive.start_step", "must be 0 or more")
        require(0 < self.lr < 1, "contrastive.lr", "must be in (0, 1)")
        require(0 <= self.gap <= 2, "contrastive.gap", "must be between 0 and 2 (codes are in [-1, 1])")
        require(0 <= self.gap_decrease < math.inf, "contrastive.gap_decrease", "must be 0 or more")
        require(self.gap_every >= 1, "contrastive.gap_every", "must be 1 or more")

    @property
    def enabled(self) -> bool:
        return self.alpha > 0

    def active(self, step: int) -> bool:
        """Whether H trains (and G's loss has its term) at `step` (counted from 0)."""
        return self.enabled and step >= self.start_step

    def gap_at(self, step: int) -> float:
        decreases = max(0, step - self.start_step) // self.gap_every
        return max(0.0, self.gap - self.gap_decrease * decreases)


@dataclass(frozen=True)
class Pairs:
    """The two latents of each pair and the index of the code each pair shares (in
    `spec.code_names` order: categorical codes first)."""

    first: Latent
    second: Latent
    shared: torch.Tensor

    def rows(self, rows: slice) -> Pairs:
        """The pairs of rows `rows`: one rank's share of a global batch of pairs."""
        return Pairs(self.first.rows(rows), self.second.rows(rows), self.shared[rows])


def sample_pairs(
    spec: LatentSpec, batch_size: int, gap: float, generator: torch.Generator, device: str | torch.device = "cpu"
) -> Pairs:
    """`batch_size` pairs of latents from the priors: same noise, one shared code chosen
    uniformly, the others drawn for each side (continuous ones at least `gap` apart).

    A uniform code at least `gap` apart is drawn as InfoGAN-CR does: both values uniformly in
    [-1 + gap/2, 1 - gap/2], then each pushed gap/2 away from the other. Under a normal prior
    the gap is not used.
    """
    n_codes = len(spec.code_names)
    shared = torch.randint(n_codes, (batch_size,), generator=generator, device=device)
    first = spec.sample(batch_size, generator, device)
    second = spec.sample(batch_size, generator, device)
    categorical = second.categorical.clone()
    for i in range(len(spec.categorical)):
        same = shared == i
        categorical[same, i] = first.categorical[same, i]
    a, b = first.continuous, second.continuous
    if spec.continuous_prior == "uniform" and gap > 0:
        half = gap / 2
        a, b = a * (1 - half), b * (1 - half)
        push = torch.where(a >= b, half, -half)
        a, b = a + push, b - push
    same = shared.unsqueeze(1) == torch.arange(len(spec.categorical), n_codes, device=device)
    b = torch.where(same, a, b)
    return Pairs(
        Latent(first.noise, first.categorical, a),
        Latent(first.noise, categorical, b),
        shared,
    )
