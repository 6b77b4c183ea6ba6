"""Network registry: an architecture name maps to its generator, discriminator and checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from .heads import DiscriminatorWithQ, QHeads, QOutput

if TYPE_CHECKING:
    from ..latent import LatentSpec
    from .config import ModelConfig


@dataclass(frozen=True)
class Architecture:
    generator: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]
    check: Callable[[ModelConfig], None]


def _mnist(name: str, size: int) -> Architecture:
    from .mnist import MnistDiscriminator, MnistGenerator
    from .paper import size_check

    return Architecture(MnistGenerator, MnistDiscriminator, size_check(name, size))


def _conv() -> Architecture:
    from .conv import ConvDiscriminator, ConvGenerator, check_conv_config

    return Architecture(ConvGenerator, ConvDiscriminator, check_conv_config)


def _paper(name: str, size: int) -> Architecture:
    from . import paper

    generator, discriminator = {
        "svhn": (paper.SvhnGenerator, paper.SvhnDiscriminator),
        "chairs": (paper.ChairsGenerator, paper.ChairsDiscriminator),
    }[name]
    return Architecture(generator, discriminator, paper.size_check(name, size))


# The paper's networks (Tables 1-5; CelebA uses SVHN's) and the general `conv` family.
ARCHITECTURES: dict[str, Architecture] = {
    "mnist": _mnist("mnist", 28),
    "faces": _mnist("faces", 32),
    "svhn": _paper("svhn", 32),
    "chairs": _paper("chairs", 64),
    "conv": _conv(),
}


def build_networks(config: ModelConfig, spec: LatentSpec) -> tuple[nn.Module, nn.Module]:
    """A fresh (generator, discriminator-with-Q) pair for the configured architecture."""
    arch = ARCHITECTURES[config.architecture]
    return arch.generator(config, spec), arch.discriminator(config, spec)


__all__ = ["ARCHITECTURES", "Architecture", "DiscriminatorWithQ", "QHeads", "QOutput", "build_networks"]
