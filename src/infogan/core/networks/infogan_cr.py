"""The networks of "InfoGAN (modified)" on 64x64 images, as InfoGAN-CR's authors built them for
dSprites (Lin et al. 2020, fjxmlzn/InfoGAN-CR, gan/network.py).

- G: FC128-ReLU-BN, FC 4x4x64-ReLU-BN, then 4x4 stride-2 up-convolutions to 64, 32 and 32
  channels, each followed by a leaky ReLU and then batch norm (activation before the norm, as
  there), and a last up-convolution to the image's channels with the output activation.
- D trunk: 4x4 stride-2 convolutions of 32, 32, 64 and 64 channels and FC128, each followed by
  a leaky ReLU; no batch norm. D head FC1; Q head FC128-lReLU-FC (no batch norm).
- The contrastive network H of InfoGAN-CR: the same trunk on two images stacked as channels,
  and a linear layer with one logit per code.

Spectral norm on every layer of D and Q (and of H but its last layer) is the config key
`model.spectral_norm`, which the presets set; see `models.build_networks`.
"""

from __future__ import annotations

from torch import nn

from infogan.core.latent import LatentSpec
from infogan.core.networks.config import ModelConfig
from infogan.core.networks.heads import DiscriminatorWithQ, ImageGenerator
from infogan.errors import InfoGANError

FEATURES = 128  # the trunk's output


def _up(c_in: int, c_out: int, slope: float) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(slope), nn.BatchNorm2d(c_out)]


def trunk(in_channels: int, slope: float) -> nn.Sequential:
    """Four 4x4 stride-2 convolutions (64 -> 4 pixels) and FC128, each with a leaky ReLU."""
    layers: list[nn.Module] = []
    for c_in, c_out in zip((in_channels, 32, 32, 64), (32, 32, 64, 64)):
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(slope)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 4 * 4, FEATURES), nn.LeakyReLU(slope))


class CrGenerator(ImageGenerator):
    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        slope = config.leaky_slope
        body = [
            nn.Linear(spec.input_dim, 128),
            nn.ReLU(),
            nn.BatchNorm1d(128),
            nn.Linear(128, 64 * 4 * 4),
            nn.ReLU(),
            nn.BatchNorm1d(64 * 4 * 4),
            nn.Unflatten(1, (64, 4, 4)),
            *_up(64, 64, slope),
            *_up(64, 32, slope),
            *_up(32, 32, slope),
            nn.ConvTranspose2d(32, config.image_channels, 4, 2, 1),
        ]
        super().__init__(body, config.output_activation)


class CrDiscriminator(DiscriminatorWithQ):
    def __init__(self, config: ModelConfig, spec: LatentSpec) -> None:
        slope = config.leaky_slope
        q_body = nn.Sequential(nn.Linear(FEATURES, 128), nn.LeakyReLU(slope))
        super().__init__(trunk(config.image_channels, slope), FEATURES, spec, slope, q_body=q_body)


def contrastive_network(config: ModelConfig, n_codes: int) -> nn.Sequential:
    """H: which of `n_codes` codes a pair of images (stacked as 2C channels) shares."""
    return nn.Sequential(trunk(2 * config.image_channels, config.leaky_slope), nn.Linear(FEATURES, n_codes))


def check_config(config: ModelConfig) -> None:
    if config.image_size != 64:
        raise InfoGANError(
            f"config: model.image_size is {config.image_size}, but the 'infogan_cr' architecture makes "
            "64x64 images; set model.image_size: 64"
        )
