"""Network registry: an architecture name maps to its generator, discriminator and checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from infogan.core.networks.heads import DiscriminatorWithQ, QHeads, QOutput

if TYPE_CHECKING:
    from infogan.core.latent import LatentSpec
    from infogan.core.networks.config import ModelConfig


@dataclass(frozen=True)
class Architecture:
    """An architecture's networks: G and D/Q from (ModelConfig, LatentSpec), its config check
    and, where it has one, InfoGAN-CR's contrastive network H from (ModelConfig, n_codes)."""

    generator: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]
    check: Callable[[ModelConfig], None]
    contrastive: Callable[[ModelConfig, int], nn.Sequential] | None = None


def _mnist(name: str, size: int) -> Architecture:
    from infogan.core.networks.mnist import MnistDiscriminator, MnistGenerator
    from infogan.core.networks.paper import size_check

    return Architecture(MnistGenerator, MnistDiscriminator, size_check(name, size))


def _mnist_small() -> Architecture:
    from infogan.core.networks.mnist import SmallMnistDiscriminator, SmallMnistGenerator, check_small

    return Architecture(SmallMnistGenerator, SmallMnistDiscriminator, check_small)


def _conv() -> Architecture:
    from infogan.core.networks.conv import ConvDiscriminator, ConvGenerator, check_conv_config

    return Architecture(ConvGenerator, ConvDiscriminator, check_conv_config)


def _infogan_cr() -> Architecture:
    from infogan.core.networks import infogan_cr

    return Architecture(
        infogan_cr.CrGenerator, infogan_cr.CrDiscriminator, infogan_cr.check_config, infogan_cr.contrastive_network
    )


def _paper(name: str, size: int) -> Architecture:
    from infogan.core.networks import paper

    generator, discriminator = {
        "svhn": (paper.SvhnGenerator, paper.SvhnDiscriminator),
        "chairs": (paper.ChairsGenerator, paper.ChairsDiscriminator),
    }[name]
    return Architecture(generator, discriminator, paper.size_check(name, size))


# The paper's networks (Tables 1-5; CelebA uses SVHN's), the general `conv` family and the
# "InfoGAN (modified)" networks of InfoGAN-CR's code (64x64); `mnist_small` is the MNIST
# networks without their 1024-wide layers, at a chosen width, for a laptop's CPU.
ARCHITECTURES: dict[str, Architecture] = {
    "mnist": _mnist("mnist", 28),
    "faces": _mnist("faces", 32),
    "mnist_small": _mnist_small(),
    "svhn": _paper("svhn", 32),
    "chairs": _paper("chairs", 64),
    "conv": _conv(),
    "infogan_cr": _infogan_cr(),
}


def build_networks(config: ModelConfig, spec: LatentSpec) -> tuple[nn.Module, nn.Module]:
    """A fresh (generator, discriminator-with-Q) pair for the configured architecture; with
    `model.spectral_norm`, every layer of D and Q has spectral norm."""
    arch = ARCHITECTURES[config.architecture]
    discriminator = arch.discriminator(config, spec)
    if config.spectral_norm:
        apply_spectral_norm(discriminator)
    return arch.generator(config, spec), discriminator


def build_contrastive(config: ModelConfig, n_codes: int) -> nn.Sequential:
    """InfoGAN-CR's H for the configured architecture; with `model.spectral_norm`, every layer
    but the last has spectral norm (as in InfoGAN-CR)."""
    make = ARCHITECTURES[config.architecture].contrastive
    if make is None:
        raise ValueError(f"the {config.architecture!r} architecture has no contrastive network")
    network = make(config, n_codes)
    if config.spectral_norm:
        apply_spectral_norm(network[:-1])
    return network


def has_contrastive(architecture: str) -> bool:
    return ARCHITECTURES[architecture].contrastive is not None


def apply_spectral_norm(module: nn.Module) -> None:
    """Spectral norm (Miyato et al. 2018; one power iteration per forward pass in training) on
    every convolution and linear layer in `module`, in place."""
    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    for layer in layers:
        nn.utils.parametrizations.spectral_norm(layer)


__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "DiscriminatorWithQ",
    "QHeads",
    "QOutput",
    "apply_spectral_norm",
    "build_contrastive",
    "build_networks",
    "has_contrastive",
]
