"""The networks of the paper's other experiments (Chen et al. 2016, appendix C, Tables 2-5).

- `svhn` (Table 2, SVHN; Table 3, CelebA uses the same networks): 32x32 images.
  G: FC 2x2x448-BN-ReLU, 4x4 upconv 256 s2-BN-ReLU, 4x4 upconv 128 s2-ReLU,
  4x4 upconv 64 s2-ReLU, 4x4 upconv C s2, output activation.
  D trunk: 4x4 conv 64 s2-lReLU, 4x4 conv 128 s2-BN-lReLU, 4x4 conv 256 s2-BN-lReLU.
- `faces` (Table 4, 3D faces): the MNIST networks of Table 1 at 32x32 (an 8x8 start instead
  of 7x7): see `mnist.py`.
- `chairs` (Table 5, 3D chairs): 64x64 images.
  G: FC1024-BN-ReLU, FC 8x8x256-BN-ReLU, 4x4 upconv 256-BN-ReLU, 4x4 upconv 256-BN-ReLU,
  4x4 upconv 128 s2-BN-ReLU, 4x4 upconv 64 s2-BN-ReLU, 4x4 upconv C s2, output activation.
  D trunk: 4x4 conv 64 s2-lReLU, 4x4 conv 128 s2-BN-lReLU, 4x4 conv 256 s2-BN-lReLU,
  4x4 conv 256-BN-lReLU, 4x4 conv 256-BN-lReLU.

Every discriminator ends in the paper's heads (FC output for D; FC128-BN-lReLU-FC for Q), see
`heads.py`. The tables' stride-1 4x4 layers keep the spatial size (TensorFlow's "SAME"
padding, which the authors' code used); a stride-1 up-convolution is a convolution, so those
layers are convolutions padded as "SAME" pads a 4x4 kernel: one pixel before, two after.
"""

from __future__ import annotations

from torch import nn

from infogan.core.latent import LatentSpec
from infogan.core.networks.config import ModelConfig
from infogan.core.networks.heads import DiscriminatorWithQ, ImageGenerator
from infogan.errors import InfoGANError


def _up(c_in: int, c_out: int, batch_norm: bool = True) -> list[nn.Module]:
    """4x4 stride-2 up-convolution (doubles the size), optional BN, ReLU."""
    layers: list[nn.Module] = [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=not batch_norm)]
    return [*layers, nn.BatchNorm2d(c_out), nn.ReLU()] if batch_norm else [*layers, nn.ReLU()]


def _same(c_in: int, c_out: int, activation: nn.Module) -> list[nn.Module]:
    """4x4 stride-1 convolution that keeps the size (padding 1 before, 2 after), BN, activation."""
    return [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(c_in, c_out, 4, bias=False), nn.BatchNorm2d(c_out), activation]


def _down(c_in: int, c_out: int, slope: float, batch_norm: bool = True) -> list[nn.Module]:
    """4x4 stride-2 convolution (halves the size), optional BN, leaky ReLU."""
    if not batch_norm:
        return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(slope)]
    return [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(slope)]


class SvhnGenerator(ImageGenerator):
    """Table 2 (SVHN) and Table 3 (CelebA)."""

    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        body = [
            nn.Linear(spec.input_dim, 448 * 2 * 2, bias=False),
            nn.BatchNorm1d(448 * 2 * 2),
            nn.ReLU(),
            nn.Unflatten(1, (448, 2, 2)),
            *_up(448, 256),
            *_up(256, 128, batch_norm=False),
            *_up(128, 64, batch_norm=False),
            nn.ConvTranspose2d(64, config.image_channels, 4, 2, 1),
        ]
        super().__init__(body, config.output_activation)


class SvhnDiscriminator(DiscriminatorWithQ):
    """Table 2 (SVHN) and Table 3 (CelebA): three stride-2 convolutions, then the heads."""

    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        slope = config.leaky_slope
        trunk = nn.Sequential(
            *_down(config.image_channels, 64, slope, batch_norm=False),
            *_down(64, 128, slope),
            *_down(128, 256, slope),
            nn.Flatten(),
        )
        super().__init__(trunk, 256 * 4 * 4, spec, slope)


class ChairsGenerator(ImageGenerator):
    """Table 5 (3D chairs)."""

    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        body = [
            nn.Linear(spec.input_dim, 1024, bias=False),
            nn.BatchNorm1d(1024),
            nn.ReLU(),
            nn.Linear(1024, 256 * 8 * 8, bias=False),
            nn.BatchNorm1d(256 * 8 * 8),
            nn.ReLU(),
            nn.Unflatten(1, (256, 8, 8)),
            *_same(256, 256, nn.ReLU()),
            *_same(256, 256, nn.ReLU()),
            *_up(256, 128),
            *_up(128, 64),
            nn.ConvTranspose2d(64, config.image_channels, 4, 2, 1),
        ]
        super().__init__(body, config.output_activation)


class ChairsDiscriminator(DiscriminatorWithQ):
    """Table 5 (3D chairs): three stride-2 and two stride-1 convolutions, then the heads."""

    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        slope = config.leaky_slope
        trunk = nn.Sequential(
            *_down(config.image_channels, 64, slope, batch_norm=False),
            *_down(64, 128, slope),
            *_down(128, 256, slope),
            *_same(256, 256, nn.LeakyReLU(slope)),
            *_same(256, 256, nn.LeakyReLU(slope)),
            nn.Flatten(),
        )
        super().__init__(trunk, 256 * 8 * 8, spec, slope)


def size_check(name: str, size: int):
    """A config check that the architecture `name` gets its one image size."""

    def check(config: ModelConfig) -> None:
        if config.image_size != size:
            raise InfoGANError(
                f"config: model.image_size is {config.image_size}, but the '{name}' architecture "
                f"makes {size}x{size} images; set model.image_size: {size}"
            )

    return check
