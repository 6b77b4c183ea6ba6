"""Pieces every network family shares: the generator's output stage, the Q network's named
heads (one per latent code) and the discriminator with D and Q heads on one trunk."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..latent import LatentSpec

LOG_STD_MIN = -5.0
LOG_STD_MAX = 2.0


@dataclass(frozen=True)
class QOutput:
    """Q's estimate of the codes behind a batch of images.

    categorical_logits: one (B, K) tensor of logits per categorical code (no softmax applied);
    continuous_mean, continuous_log_std: (B, n_continuous) Gaussian parameters per continuous code.
    """

    categorical_logits: list[torch.Tensor]
    continuous_mean: torch.Tensor
    continuous_log_std: torch.Tensor


class QHeads(nn.Module):
    """Named linear heads: `c1` -> K logits for a categorical code, `c3` -> (mean, log-std)."""

    def __init__(self, features: int, spec: LatentSpec) -> None:
        super().__init__()
        self.spec = spec
        heads = {name: nn.Linear(features, k) for name, k in zip(spec.categorical_names, spec.categorical)}
        heads.update({name: nn.Linear(features, 2) for name in spec.continuous_names})
        self.heads = nn.ModuleDict(heads)

    def forward(self, features: torch.Tensor) -> QOutput:
        logits = [self.heads[name](features) for name in self.spec.categorical_names]
        gaussians = [self.heads[name](features) for name in self.spec.continuous_names]
        if gaussians:
            params = torch.stack(gaussians, dim=1)  # (B, n_continuous, 2)
            mean, raw_log_std = params[..., 0], params[..., 1]
        else:
            mean = raw_log_std = features.new_zeros(features.shape[0], 0)
        log_std = raw_log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        return QOutput(logits, mean, log_std)


class DiscriminatorWithQ(nn.Module):
    """A shared trunk, a real/fake head (one logit) and the Q head (FC128-BN-lReLU, then one
    named output head per code), as in the paper: D and Q share everything but their heads."""

    def __init__(self, trunk: nn.Module, features: int, spec: LatentSpec, slope: float) -> None:
        super().__init__()
        self.trunk = trunk
        self.d_head = nn.Linear(features, 1)
        self.q_body = nn.Sequential(nn.Linear(features, 128, bias=False), nn.BatchNorm1d(128), nn.LeakyReLU(slope))
        self.q_heads = QHeads(128, spec)

    def forward(self, images: torch.Tensor, with_q: bool = True) -> tuple[torch.Tensor, QOutput | None]:
        """Real/fake logits of shape (B,) and, unless with_q is False, Q's output."""
        features = self.trunk(images)
        logits = self.d_head(features).flatten()
        q = self.q_heads(self.q_body(features)) if with_q else None
        return logits, q

    def q_parameters(self) -> list[nn.Parameter]:
        """Parameters of the Q head alone (not the shared trunk)."""
        return [*self.q_body.parameters(), *self.q_heads.parameters()]

    def adversarial_parameters(self) -> list[nn.Parameter]:
        """Parameters of the shared trunk and the real/fake head."""
        return [*self.trunk.parameters(), *self.d_head.parameters()]


class ImageGenerator(nn.Module):
    """A generator body (latent input to pre-activation image) and the configured output
    activation: sigmoid for images in [0, 1], tanh for [-1, 1]."""

    def __init__(self, body: list[nn.Module], output_activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)
        self.activation = nn.Sigmoid() if output_activation == "sigmoid" else nn.Tanh()

    def forward(self, latent_input: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(latent_input))
