"""What a checkpoint holds of a run in training: its networks, optimisers and random generators,
built from a config, saved as a snapshot and loaded back with every tensor checked."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import infogan.checkpoint as ckpt
from infogan.config import Config
from infogan.core.networks import build_contrastive, build_networks
from infogan.errors import InfoGANError
from infogan.training.step import Optimizers, adam, build_optimizers

AUGMENT_SEED_OFFSET = 1 << 40  # the transforms' generator: seeded apart from the latents' one
PAIRS_SEED_OFFSET = 2 << 40  # the contrastive pairs' generator, and H's initial weights
LEARNING_RATES = {"d": "optim.lr_d", "g": "optim.lr_g", "info": "optim.lr_info", "contrastive": "contrastive.lr"}


class NonFiniteError(InfoGANError):
    """Training produced NaN or infinity."""


def diverged_message(what: str, step: int) -> str:
    """What went wrong; the trainer adds what to do about it (`divergence_hint`)."""
    return f"training diverged: {what} became NaN or infinite by step {step}."


def divergence_hint(run_dir: Path | None, newest: Path | None, lr_d: float, lr_g: float, rollback: bool) -> str:
    """What to do after a divergence: resume from `newest`, the run's newest checkpoint (written
    with finite weights), or start again when there is none, with half the run's learning
    rates; `rollback`: propose --on-nonfinite rollback too."""
    lower = f"--set optim.lr_d={lr_d / 2:.3g} --set optim.lr_g={lr_g / 2:.3g}"
    if run_dir is None:
        return f"Nothing was saved (no run directory); train again with lower learning rates ({lower})."
    if newest is None:
        return (
            f"No checkpoint was written before it diverged, so there is nothing to resume from; start again "
            f"with lower learning rates: infogan train --out {run_dir} {lower} (and the run's other options)."
        )
    also = " or with --on-nonfinite rollback" if rollback else ""
    return (
        f"The run's newest checkpoint, {newest}, was written with finite weights; resume from it with lower "
        f"learning rates (infogan train --resume --out {run_dir} {lower}){also}."
    )


@dataclass
class TrainState:
    """The networks, optimisers and generators of a run. The latents come from `latent_rng`; the
    augmented term's transforms from `augment_rng` and the contrastive pairs from `pairs_rng`,
    so turning either on leaves the latents alone. `contrastive` (InfoGAN-CR's H) exists once
    the regulariser has started (`start_contrastive`)."""

    generator: nn.Module
    discriminator: nn.Module
    optimizers: Optimizers
    latent_rng: torch.Generator
    augment_rng: torch.Generator
    pairs_rng: torch.Generator
    contrastive: nn.Module | None = None

    @classmethod
    def build(cls, config: Config, device: torch.device, capturable: bool = False) -> TrainState:
        """Fresh networks (initialised from the config's seed, leaving the global RNG alone) on
        `device`, their optimisers, and the run's generators."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            generator, discriminator = build_networks(config.model, config.latent)
        generator, discriminator = generator.to(device), discriminator.to(device)
        return cls(
            generator,
            discriminator,
            build_optimizers(config, generator, discriminator, capturable=capturable),
            torch.Generator(device).manual_seed(config.seed),
            torch.Generator(device).manual_seed(config.seed + AUGMENT_SEED_OFFSET),
            torch.Generator(device).manual_seed(config.seed + PAIRS_SEED_OFFSET),
        )

    def start_contrastive(self, config: Config, capturable: bool = False) -> None:
        """Create H (initialised from the seed, leaving the global RNG alone) and its optimiser."""
        device = next(self.generator.parameters()).device
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + PAIRS_SEED_OFFSET)
            network = build_contrastive(config.model, len(config.latent.code_names))
        self.contrastive = network.to(device)
        betas = (config.optim.beta1, config.optim.beta2)
        self.optimizers.contrastive = adam(self.contrastive.parameters(), config.contrastive.lr, betas, capturable)

    def networks(self) -> dict[str, nn.Module]:
        nets = {"generator": self.generator, "discriminator": self.discriminator}
        return nets if self.contrastive is None else {**nets, "contrastive": self.contrastive}

    def snapshot(self, config: Config, step: int) -> ckpt.Snapshot:
        rng = {"latent": self.latent_rng, "augment": self.augment_rng, "pairs": self.pairs_rng}
        return ckpt.Snapshot(
            kind="checkpoint",
            config=config,
            step=step,
            networks={name: net.state_dict() for name, net in self.networks().items()},
            optimizers={name: opt.state_dict() for name, opt in self.optimizers.named().items()},
            rng={name: generator.get_state() for name, generator in rng.items()},
        )

    def load(self, snapshot: ckpt.Snapshot, config: Config, capturable: bool) -> None:
        """Load a checkpoint's tensors in place, once each fits. Learning rates in `config` that
        differ from the checkpoint's config replace the saved ones (else those stay, halved
        ones after a rollback included); `capturable` is how this run steps."""
        if snapshot.kind != "checkpoint":
            raise InfoGANError("an exported model holds no optimiser state; resume from a run's checkpoint")
        if "contrastive" in snapshot.networks and self.contrastive is None:
            if not config.contrastive.enabled:
                raise InfoGANError(
                    "the checkpoint holds InfoGAN-CR's contrastive network, but this config has "
                    "contrastive.alpha: 0; resume with the run's own contrastive settings"
                )
            self.start_contrastive(config, capturable)
        ckpt.load_networks(self.networks(), snapshot.networks)
        for name, opt in self.optimizers.named().items():
            if name not in snapshot.optimizers:
                raise InfoGANError(f"the checkpoint holds no state for optimiser {name}; it cannot be resumed")
            ckpt.load_optimizer(opt, snapshot.optimizers[name], name)
            for group in opt.param_groups:
                group["capturable"] = capturable
        self._apply_changed_learning_rates(snapshot.config, config)
        try:
            self.latent_rng.set_state(snapshot.rng["latent"])
            self._load_augment_rng(snapshot, config)
            if "pairs" in snapshot.rng:
                self.pairs_rng.set_state(snapshot.rng["pairs"])
        except (KeyError, RuntimeError) as exc:
            raise InfoGANError(f"the checkpoint's random-generator state cannot be used: {exc}") from None

    def check_finite(self, step: int) -> None:
        """Raise `NonFiniteError` naming the first weight or batch-norm statistic that is not finite."""
        for net_name, net in self.networks().items():
            tensors = [("weight", *item) for item in net.named_parameters()]
            tensors += [("batch-norm statistic", *item) for item in net.named_buffers() if item[1].is_floating_point()]
            for kind, name, tensor in tensors:
                if not torch.isfinite(tensor).all():
                    raise NonFiniteError(diverged_message(f"{net_name} {kind} {name}", step))

    def halve_learning_rates(self) -> None:
        for optimizer in self.optimizers.named().values():
            for group in optimizer.param_groups:
                group["lr"] *= 0.5

    def _load_augment_rng(self, snapshot: ckpt.Snapshot, config: Config) -> None:
        state = snapshot.rng.get("augment")
        if state is not None:
            self.augment_rng.set_state(state)
        elif config.loss.lambda_augmented > 0:  # written before the transforms had their own generator
            print(
                "note: this checkpoint holds no state for the augmented term's transforms (an earlier version "
                "drew them with the latents); they continue from a fresh stream",
                file=sys.stderr,
            )

    def _apply_changed_learning_rates(self, saved: Config, config: Config) -> None:
        for name, opt in self.optimizers.named().items():
            key = LEARNING_RATES[name]
            old, new = _dotted(saved, key), _dotted(config, key)
            if new != old:
                for group in opt.param_groups:
                    group["lr"] = new
                print(f"{key} changed on resume: {old} -> {new}", file=sys.stderr)


def _dotted(config: Config, key: str):
    section, name = key.split(".")
    return getattr(getattr(config, section), name)
