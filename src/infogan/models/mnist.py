"""The paper's MNIST networks (Table 1): G, and D with the Q head on the shared trunk."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import InfoGANError
from ..latent import LatentSpec
from .heads import QHeads, QOutput


class MnistGenerator(nn.Module):
    """FC1024-BN-ReLU, FC 7x7x128-BN-ReLU, 4x4 upconv 64 s2-BN-ReLU, 4x4 upconv C s2, activation."""

    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(spec.input_dim, 1024, bias=False),
            nn.BatchNorm1d(1024),
            nn.ReLU(),
            nn.Linear(1024, 128 * 7 * 7, bias=False),
            nn.BatchNorm1d(128 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (128, 7, 7)),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, config.image_channels, 4, stride=2, padding=1),
        )
        self.activation = nn.Sigmoid() if config.output_activation == "sigmoid" else nn.Tanh()

    def forward(self, latent_input: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(latent_input))


class MnistDiscriminator(nn.Module):
    """Trunk: 4x4 conv 64 s2-lReLU, 4x4 conv 128 s2-BN-lReLU, FC1024-BN-lReLU.

    D head: FC 1 (a logit). Q head: FC128-BN-lReLU, then one named output head per code.
    """

    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        super().__init__()
        slope = config.leaky_slope
        self.trunk = nn.Sequential(
            nn.Conv2d(config.image_channels, 64, 4, stride=2, padding=1),
            nn.LeakyReLU(slope),
            nn.Conv2d(64, 128, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(slope),
            nn.Flatten(),
            nn.Linear(128 * 7 * 7, 1024, bias=False),
            nn.BatchNorm1d(1024),
            nn.LeakyReLU(slope),
        )
        self.d_head = nn.Linear(1024, 1)
        self.q_body = nn.Sequential(nn.Linear(1024, 128, bias=False), nn.BatchNorm1d(128), nn.LeakyReLU(slope))
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


def check_mnist_config(config: ModelConfig) -> None:
    if config.image_size != 28:
        raise InfoGANError(
            f"config: model.image_size is {config.image_size}, but the 'mnist' architecture "
            "makes 28x28 images; set model.image_size: 28"
        )
