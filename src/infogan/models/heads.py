"""The Q network's output heads: one named head per latent code, all reading shared features."""

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
