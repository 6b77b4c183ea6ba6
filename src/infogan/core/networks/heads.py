"""Pieces every network family shares: the generator's output stage, the Q network's named
heads (one per latent code) and the discriminator with D and Q heads on one trunk."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from infogan.core.latent import LatentSpec

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
    """A shared trunk, a real/fake head (one logit) and the Q head (by default FC128-BN-lReLU as
    in the paper, then one named output head per code): D and Q share everything but their heads."""

    def __init__(
        self, trunk: nn.Module, features: int, spec: LatentSpec, slope: float, q_body: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.d_head = nn.Linear(features, 1)
        if q_body is None:
            q_body = nn.Sequential(nn.Linear(features, 128, bias=False), nn.BatchNorm1d(128), nn.LeakyReLU(slope))
        self.q_body = q_body
        self.q_heads = QHeads(128, spec)
        self.joinable = _batchnorm_reachable(trunk)  # can real and fake share one pass? (checked once)

    def forward(
        self, images: torch.Tensor, with_q: bool = True, parts: tuple[int, ...] | None = None
    ) -> tuple[torch.Tensor, QOutput | None]:
        """Real/fake logits of shape (B,) and, unless with_q is False, Q's output.

        parts: sizes of separate batches joined in `images` (see `forward_real_fake`): batch norm
        normalises each with its own statistics, and Q reads only the last one. Needs a
        `joinable` trunk (every batch norm a member of it or of nested Sequentials).
        """
        if parts is not None and not self.joinable:
            raise ValueError("this trunk has batch norms inside other blocks; call it once per batch")
        features = self.trunk(images) if parts is None else _split_batchnorm_pass(self.trunk, images, list(parts))
        logits = self.d_head(features).flatten()
        if with_q and parts is not None:
            features = features[images.shape[0] - parts[-1] :]
        q = self.q_heads(self.q_body(features)) if with_q else None
        return logits, q

    def forward_real_fake(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, QOutput]:
        """`self(real, with_q=False)` and `self(fake)` in one pass through the trunk.

        The two batches travel together through every layer except batch norm, which normalises
        each batch with its own statistics and updates its running statistics real batch first,
        as two separate calls do; so the results are those of two calls, while each convolution
        and matrix product (and its weight gradient) runs once on the joined batch. A trunk
        whose batch norms sit inside other blocks gets the two separate calls.
        """
        if not self.joinable:
            real_logits, _ = self(real, with_q=False)
            fake_logits, q = self(fake)
            return real_logits, fake_logits, q
        logits, q = self(torch.cat([real, fake]), parts=(real.shape[0], fake.shape[0]))
        real_logits, fake_logits = logits.split([real.shape[0], fake.shape[0]])
        return real_logits, fake_logits, q

    def q_parameters(self) -> list[nn.Parameter]:
        """Parameters of the Q head alone (not the shared trunk)."""
        return [*self.q_body.parameters(), *self.q_heads.parameters()]

    def adversarial_parameters(self) -> list[nn.Parameter]:
        """Parameters of the shared trunk and the real/fake head."""
        return [*self.trunk.parameters(), *self.d_head.parameters()]


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def _batchnorm_reachable(layers: nn.Sequential) -> bool:
    """Whether every batch norm in `layers` is a direct member of it or of nested Sequentials."""
    for layer in layers:
        if isinstance(layer, nn.Sequential):
            if not _batchnorm_reachable(layer):
                return False
        elif not _is_norm(layer) and any(_is_norm(m) for m in layer.modules()):
            return False
    return True


def _split_batchnorm_pass(layers: nn.Sequential, joined: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Run `layers` on a batch joined from parts of `sizes`; batch norm in training mode sees
    each part alone (its statistics are per batch), every other layer the whole. Only for
    layers that `_batchnorm_reachable` accepts."""
    x = joined
    for layer in layers:
        if isinstance(layer, nn.Sequential):
            x = _split_batchnorm_pass(layer, x, sizes)
        elif _is_norm(layer) and layer.training:
            x = torch.cat([layer(part) for part in x.split(sizes)])
        else:
            x = layer(x)
    return x


class ImageGenerator(nn.Module):
    """A generator body (latent input to pre-activation image) and the configured output
    activation: sigmoid for images in [0, 1], tanh for [-1, 1]."""

    def __init__(self, body: list[nn.Module], output_activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)
        self.activation = nn.Sigmoid() if output_activation == "sigmoid" else nn.Tanh()

    def forward(self, latent_input: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(latent_input))


def to_unit_range(images: torch.Tensor, image_range: tuple[float, float]) -> torch.Tensor:
    """Generator output in `image_range` mapped to [0, 1] for saving or returning."""
    low, high = image_range
    return ((images - low) / (high - low)).clamp(0, 1)
