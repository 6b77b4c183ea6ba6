"""The paper's MNIST networks (Table 1): G, and D with the Q head on the shared trunk.

The same networks at 32x32 (an 8x8 start instead of 7x7) are the paper's 3D-faces networks
(Table 4); the architecture names `mnist` (28 px) and `faces` (32 px) select them.
"""

from __future__ import annotations

from torch import nn

from infogan.core.latent import LatentSpec
from infogan.core.networks.config import ModelConfig
from infogan.core.networks.heads import DiscriminatorWithQ, ImageGenerator
from infogan.core.networks.paper import size_check
from infogan.errors import require


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


class SmallMnistGenerator(ImageGenerator):
    """The paper's generator with its 1024-wide layer `hidden` wide (or none) and at `width`
    channels (128 in the paper): [FC H-BN-ReLU], FC 7x7xW-BN-ReLU, 4x4 upconv W/2 s2-BN-ReLU,
    4x4 upconv C s2, activation."""

    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        start, width, hidden = config.image_size // 4, config.width, config.hidden
        body = [
            *(_fully_connected(spec.input_dim, hidden, nn.ReLU()) if hidden else []),
            nn.Linear(hidden or spec.input_dim, width * start * start, bias=False),
            nn.BatchNorm1d(width * start * start),
            nn.ReLU(),
            nn.Unflatten(1, (width, start, start)),
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width // 2),
            nn.ReLU(),
            nn.ConvTranspose2d(width // 2, config.image_channels, 4, stride=2, padding=1),
        ]
        super().__init__(body, config.output_activation)


class SmallMnistDiscriminator(DiscriminatorWithQ):
    """The paper's trunk with its FC1024 `hidden` wide (or none) and at `width` channels: 4x4
    conv W/2 s2-lReLU, 4x4 conv W s2-BN-lReLU, [FC H-BN-lReLU]; the D and Q heads read the last
    features (7x7xW without the hidden layer)."""

    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        slope, start, width, hidden = config.leaky_slope, config.image_size // 4, config.width, config.hidden
        trunk = nn.Sequential(
            nn.Conv2d(config.image_channels, width // 2, 4, stride=2, padding=1),
            nn.LeakyReLU(slope),
            nn.Conv2d(width // 2, width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.LeakyReLU(slope),
            nn.Flatten(),
            *(_fully_connected(width * start * start, hidden, nn.LeakyReLU(slope)) if hidden else []),
        )
        super().__init__(trunk, hidden or width * start * start, spec, slope)


def _fully_connected(inputs: int, outputs: int, activation: nn.Module) -> list[nn.Module]:
    return [nn.Linear(inputs, outputs, bias=False), nn.BatchNorm1d(outputs), activation]


def check_small(config: ModelConfig) -> None:
    """mnist_small makes 28x28 images from an even width (its first layers have half of it)."""
    size_check("mnist_small", 28)(config)
    require(config.width >= 2 and config.width % 2 == 0, "model.width", "must be an even number, 2 or more")
    require(config.hidden >= 0, "model.hidden", "must be 0 (no hidden layer) or more")
