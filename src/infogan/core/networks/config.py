"""The config's `model` section, owned by the networks it describes."""

from __future__ import annotations

from dataclasses import dataclass

from infogan.errors import require, require_choice

OUTPUT_ACTIVATIONS = ("sigmoid", "tanh")
WIDE_ARCHITECTURES = ("conv", "mnist_small")  # the families whose channel count `width` sets


@dataclass(frozen=True)
class ModelConfig:
    """Network family and its knobs. The image range follows the output activation; `width`
    (channels of the largest feature map) sizes the conv family only; `spectral_norm` works
    with every family."""

    architecture: str = "mnist"
    image_channels: int = 1
    image_size: int = 28
    leaky_slope: float = 0.01
    output_activation: str = "sigmoid"
    width: int = 64
    hidden: int = 0  # mnist_small only: a fully connected layer this wide in G (first) and D (last); 0: none
    spectral_norm: bool = False  # on every layer of D and Q (and of InfoGAN-CR's H but its last)

    def __post_init__(self) -> None:
        from infogan.core.networks import ARCHITECTURES  # the registry's networks import this module

        require_choice(self.architecture, tuple(ARCHITECTURES), "model.architecture")
        require(self.image_channels in (1, 3), "model.image_channels", "must be 1 or 3")
        require(0.0 <= self.leaky_slope < 1.0, "model.leaky_slope", "must be in [0, 1)")
        require_choice(self.output_activation, OUTPUT_ACTIVATIONS, "model.output_activation")
        require(
            self.width == 64 or self.architecture in WIDE_ARCHITECTURES,
            "model.width",
            f"is {self.width}, but only the {' and '.join(WIDE_ARCHITECTURES)} architectures have a width; "
            "the paper's networks are fixed",
        )
        require(
            self.hidden == 0 or self.architecture == "mnist_small",
            "model.hidden",
            f"is {self.hidden}, but only the mnist_small architecture has a hidden layer to size",
        )
        ARCHITECTURES[self.architecture].check(self)

    @property
    def image_range(self) -> tuple[float, float]:
        """The pixel range the generator produces and real data is scaled to."""
        return (0.0, 1.0) if self.output_activation == "sigmoid" else (-1.0, 1.0)
