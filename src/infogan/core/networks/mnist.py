"""The paper's MNIST networks (Table 1): G, and D with the Q head on the shared trunk.

The same networks at 32x32 (an 8x8 start instead of 7x7) are the paper's 3D-faces networks
(Table 4); the architecture names `mnist` (28 px) and `faces` (32 px) select them.
"""

from __future__ import annotations

from torch import nn

from infogan.core.latent import LatentSpec
from infogan.core.networks.config import ModelConfig
from infogan.core.networks.heads import DiscriminatorWithQ, ImageGenerator


class MnistGenerator(ImageGenerator):
    """FC1024-BN-ReLU, FC 7x7x128-BN-ReLU, 4x4 upconv 64 s2-BN-ReLU, 4x4 upconv C s2, activation."""

    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        start = config.image_size // 4
        body = [
            nn.Linear(spec.input_dim, 1024, bias=False),
            nn.BatchNorm1d(1024),
            nn.ReLU(),
            nn.Linear(1024, 128 * start * start, bias=False),
            nn.BatchNorm1d(128 * start * start),
            nn.ReLU(),
            nn.Unflatten(1, (128, start, start)),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, config.image_channels, 4, stride=2, padding=1),
        ]
        super().__init__(body, config.output_activation)


class MnistDiscriminator(DiscriminatorWithQ):
    """Trunk: 4x4 conv 64 s2-lReLU, 4x4 conv 128 s2-BN-lReLU, FC1024-BN-lReLU; then the D and Q heads."""

    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        slope = config.leaky_slope
        start = config.image_size // 4
        trunk = nn.Sequential(
            nn.Conv2d(config.image_channels, 64, 4, stride=2, padding=1),
            nn.LeakyReLU(slope),
            nn.Conv2d(64, 128, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(slope),
            nn.Flatten(),
            nn.Linear(128 * start * start, 1024, bias=False),
            nn.BatchNorm1d(1024),
            nn.LeakyReLU(slope),
        )
        super().__init__(trunk, 1024, spec, slope)
