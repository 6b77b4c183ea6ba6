"""A general DCGAN-style family for square images of 32, 64 or 128 pixels and 1 or 3 channels,
used when no paper network fits. Generator: FC1024-BN-ReLU, FC to 4x4xC-BN-ReLU, then 4x4
stride-2 up-convolutions (BN-ReLU) halving the channels until the image size. Discriminator:
the mirror image (4x4 stride-2 convolutions, BN-lReLU after the first), FC1024-BN-lReLU, then
the D and Q heads of the paper."""

from __future__ import annotations

import math

from torch import nn

from infogan.core.latent import LatentSpec
from infogan.core.networks.config import ModelConfig
from infogan.core.networks.heads import DiscriminatorWithQ, ImageGenerator
from infogan.errors import InfoGANError

SIZES = (32, 64, 128)


def channel_widths(image_size: int, width: int = 64) -> list[int]:
    """Feature channels at resolutions 4, 8, ..., image_size / 2 (widest first): `width` at the
    largest feature map, doubling at each halving of the resolution, at most 8 x width."""
    steps = int(math.log2(image_size // 4))
    return [min(8 * width, width * 2 ** (steps - 1 - i)) for i in range(steps)]


class ConvGenerator(ImageGenerator):
    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        widths = channel_widths(config.image_size, config.width)
        layers: list[nn.Module] = [
            nn.Linear(spec.input_dim, 1024, bias=False),
            nn.BatchNorm1d(1024),
            nn.ReLU(),
            nn.Linear(1024, widths[0] * 16, bias=False),
            nn.BatchNorm1d(widths[0] * 16),
            nn.ReLU(),
            nn.Unflatten(1, (widths[0], 4, 4)),
        ]
        for wide, narrow in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False), nn.BatchNorm2d(narrow), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(widths[-1], config.image_channels, 4, 2, 1))
        super().__init__(layers, config.output_activation)


class ConvDiscriminator(DiscriminatorWithQ):
    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        slope = config.leaky_slope
        widths = channel_widths(config.image_size, config.width)[::-1]  # narrowest first
        layers: list[nn.Module] = [nn.Conv2d(config.image_channels, widths[0], 4, 2, 1), nn.LeakyReLU(slope)]
        for narrow, wide in zip(widths, widths[1:]):
            layers += [nn.Conv2d(narrow, wide, 4, 2, 1, bias=False), nn.BatchNorm2d(wide), nn.LeakyReLU(slope)]
        layers += [
            nn.Flatten(),
            nn.Linear(widths[-1] * 16, 1024, bias=False),
            nn.BatchNorm1d(1024),
            nn.LeakyReLU(slope),
        ]
        super().__init__(nn.Sequential(*layers), 1024, spec, slope)


def check_conv_config(config: ModelConfig) -> None:
    if config.width < 8:
        raise InfoGANError(f"config: model.width is {config.width}; the conv family needs 8 or more channels")
    if config.image_size not in SIZES:
        raise InfoGANError(
            f"config: model.image_size is {config.image_size}; the 'conv' architecture makes "
            f"{', '.join(map(str, SIZES))}-pixel images"
        )
