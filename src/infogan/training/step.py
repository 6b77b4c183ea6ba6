"""One InfoGAN training step under each info-term convention, and the state that steps need.

Conventions for which parameters the info term L_I trains (config `loss.info_update`):
- "both" (the authors' code): lambda * L_I is added to D's loss, so D's optimiser trains the
  trunk and the Q head with it, and to G's loss, so G's optimiser trains G with it.
- "generator_q" (many PyTorch ports): the Q head sits in G's optimiser; G's loss carries
  lambda * L_I; D's optimiser (trunk + real/fake head) sees only the adversarial loss.
- "joint": D and G steps are purely adversarial; a third optimiser over all of G and D takes
  a step on lambda * L_I alone, after a fresh generator forward.

With `loss.lambda_augmented` above 0, wherever L_I enters a loss so does its categorical part
on randomly transformed copies of the generated images (`infogan.training.augment`), weighted by it.

With InfoGAN-CR's contrastive regulariser running (`contrastive.py`), the step starts with H's
update on pairs of generated images, and G's loss adds alpha times H's cross-entropy. With
`optim.generator_steps` above 1, G takes that many updates per D update on the same latents,
each after a fresh generator pass (InfoGAN-CR's code takes two).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from infogan.config import Config, LossConfig
from infogan.core.contrastive import Pairs
from infogan.core.latent import Latent, LatentSpec
from infogan.core.losses import (
    categorical_info_losses,
    categorical_mi_bounds,
    discriminator_loss,
    generator_loss,
    info_terms,
)
from infogan.core.networks import QOutput
from infogan.training.augment import transform
from infogan.training.ranks import World


@dataclass
class Optimizers:
    """The Adam optimisers of one run; `info` exists only under the "joint" convention,
    `contrastive` (H's) once InfoGAN-CR's regulariser has started."""

    d: torch.optim.Optimizer
    g: torch.optim.Optimizer
    info: torch.optim.Optimizer | None = None
    contrastive: torch.optim.Optimizer | None = None

    def named(self) -> dict[str, torch.optim.Optimizer]:
        pairs = {"d": self.d, "g": self.g, "info": self.info, "contrastive": self.contrastive}
        return {name: opt for name, opt in pairs.items() if opt is not None}


def adam(
    params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float], capturable: bool = False
) -> torch.optim.Optimizer:
    """Adam, fused where the device has it (faster on CPU: benchmarks/results/throughput-cpu/)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True, capturable=capturable)
    except (RuntimeError, TypeError, ValueError):  # a device or PyTorch without fused Adam
        return torch.optim.Adam(params, lr=lr, betas=betas, capturable=capturable)


def build_optimizers(
    config: Config, generator: nn.Module, discriminator: nn.Module, capturable: bool = False
) -> Optimizers:
    """Adam optimisers whose parameter sets follow `config.loss.info_update`.

    `capturable=True` makes their steps recordable in a CUDA graph (`infogan.training.graph`).
    """
    optim = config.optim
    betas = (optim.beta1, optim.beta2)
    rule = config.loss.info_update
    if rule == "both":
        return Optimizers(
            adam(discriminator.parameters(), optim.lr_d, betas, capturable),
            adam(generator.parameters(), optim.lr_g, betas, capturable),
        )
    d = adam(discriminator.adversarial_parameters(), optim.lr_d, betas, capturable)
    if rule == "generator_q":
        g_and_q = [*generator.parameters(), *discriminator.q_parameters()]
        return Optimizers(d, adam(g_and_q, optim.lr_g, betas, capturable))
    everything = [*generator.parameters(), *discriminator.parameters()]
    g = adam(generator.parameters(), optim.lr_g, betas, capturable)
    return Optimizers(d, g, adam(everything, optim.lr_info, betas, capturable))


def set_trainable(module: nn.Module, trainable: Iterable[nn.Parameter]) -> None:
    """requires_grad on exactly the parameters in `trainable` among `module`'s parameters."""
    keep = {id(p) for p in trainable}
    for param in module.parameters():
        param.requires_grad_(id(param) in keep)


@dataclass
class StepContext:
    """What one training step needs besides the batch.

    precision "bf16" runs the forward passes under bfloat16 autocast (matrix products and
    convolutions in bfloat16, losses and weights in float32); "fp32" runs everything in float32.
    graph_safe=True keeps a step recordable in a CUDA graph (autocast then caches no casts).
    contrastive: InfoGAN-CR's H, once it has started (its optimiser is `optimizers.contrastive`).
    world: the ranks training together; each optimiser step averages its gradients over them
    first (`distributed.World.average_gradients`; nothing on one process).
    """

    config: Config
    spec: LatentSpec
    generator: nn.Module
    discriminator: nn.Module
    optimizers: Optimizers
    precision: str = "fp32"
    graph_safe: bool = False
    contrastive: nn.Module | None = None
    world: World = World()

    def __post_init__(self) -> None:
        self._device_type = next(self.generator.parameters()).device.type  # looked up once, not per step
        self.phases = step_phases(self.config)

    def autocast(self) -> torch.autocast:
        return torch.autocast(
            self._device_type,
            dtype=torch.bfloat16,
            enabled=self.precision == "bf16",
            cache_enabled=False if self.graph_safe else None,
        )


def stat_names(config: Config) -> list[str]:
    """Names of the values `train_step` can return, in order. With the augmented term on, each
    categorical code's MI bound as Q reads it from the transformed images
    (`mi_augmented_<code>`, from G's update or the info update under "joint"). With the
    contrastive regulariser configured, H's cross-entropy and accuracy (`cr_loss`,
    `cr_accuracy`), returned only once it has started."""
    spec, loss = config.latent, config.loss
    names = ["d_loss", "g_loss", "d_real", "d_fake"]
    names += [f"mi_{n}" for n in spec.categorical_names]
    names += [f"info_loss_{n}" for n in spec.continuous_names]
    if _augmented_on(loss, spec):
        names += [f"mi_augmented_{n}" for n in spec.categorical_names]
    if config.contrastive.enabled:
        names += ["cr_loss", "cr_accuracy"]
    return names


Stats = dict[str, torch.Tensor]


@dataclass(frozen=True)
class StepInputs:
    """What the phases of one step share: the real batch, the step's generated images (made once,
    before D's update), the latents they came from, the transform draws (or None), the
    contrastive pairs with their images stacked as channels (or None), and the generated images
    transformed for the augmented term (made once for D's and G's updates; None when it is off)."""

    real: torch.Tensor
    fake: torch.Tensor
    latent: Latent
    draws: torch.Tensor | None
    pairs: Pairs | None = None
    pair_images: torch.Tensor | None = None
    transformed: torch.Tensor | None = None


Phase = Callable[[StepContext, StepInputs], Stats]


def step_phases(config: Config) -> tuple[Phase, ...]:
    """The updates one step makes, in order: H's (when the step has contrastive pairs), D's,
    G's (`optim.generator_steps` times; every one after the first on freshly generated images),
    then under "joint" the third optimiser's info update (whose statistics replace D's)."""
    phases: list[Phase] = [
        contrastive_phase,
        lambda ctx, x: discriminator_phase(ctx, x.real, x.fake, x.latent, x.draws, x.transformed),
        generator_phase,
    ]
    phases += [lambda ctx, x: generator_phase(ctx, regenerated(ctx, x))] * (config.optim.generator_steps - 1)
    if config.loss.info_update == "joint":
        phases.append(lambda ctx, x: info_phase(ctx, x.latent, x.draws))
    return tuple(phases)


def train_step(
    ctx: StepContext,
    real: torch.Tensor,
    latent: Latent,
    draws: torch.Tensor | None = None,
    pairs: Pairs | None = None,
) -> Stats:
    """One D update and `optim.generator_steps` G updates (and H's update first when `pairs`
    are given, and an info update under "joint").

    draws: the uniform draws of this step's image transforms (`augment.draw_transforms`),
    needed when `loss.lambda_augmented` is above 0. pairs: the contrastive pairs
    (`contrastive.sample_pairs`), given once H has started (`ctx.contrastive`). Returns the
    detached statistics by name (names of `stat_names`) as tensors on the device, so the caller
    decides when to synchronise with it.
    """
    if ctx.config.loss.lambda_augmented > 0 and draws is None:
        raise ValueError("loss.lambda_augmented is above 0: pass this step's transform draws")
    if pairs is not None and ctx.contrastive is None:
        raise ValueError("contrastive pairs were given, but the step context has no contrastive network")
    with ctx.autocast():
        fake = ctx.generator(ctx.spec.to_input(latent))
    inputs = StepInputs(real, fake, latent, draws, pairs, _pair_images(ctx, pairs), _transformed(ctx, fake, draws))
    stats: Stats = {}
    for phase in ctx.phases:
        stats.update(phase(ctx, inputs))
    return stats


def regenerated(ctx: StepContext, inputs: StepInputs) -> StepInputs:
    """The step's inputs with the generated images (and pair images) made again by the current G."""
    with ctx.autocast():
        fake = ctx.generator(ctx.spec.to_input(inputs.latent))
    pair_images, transformed = _pair_images(ctx, inputs.pairs), _transformed(ctx, fake, inputs.draws)
    return StepInputs(inputs.real, fake, inputs.latent, inputs.draws, inputs.pairs, pair_images, transformed)


def _transformed(ctx: StepContext, fake: torch.Tensor, draws: torch.Tensor | None) -> torch.Tensor | None:
    """The generated images transformed for the augmented term, made once per step for D's
    update (detached) and G's (None when the term is off, and under "joint", whose info update
    generates its own images)."""
    if draws is None or not _augmented_on(ctx.config.loss, ctx.spec) or ctx.config.loss.info_update == "joint":
        return None
    with ctx.autocast():
        return transform(fake, draws, ctx.config.loss, ctx.config.model.image_range)


def _pair_images(ctx: StepContext, pairs: Pairs | None) -> torch.Tensor | None:
    """Both images of every pair, generated in two passes, stacked as channels (B, 2C, H, W)."""
    if pairs is None:
        return None
    with ctx.autocast():
        first = ctx.generator(ctx.spec.to_input(pairs.first))
        second = ctx.generator(ctx.spec.to_input(pairs.second))
    return torch.cat([first, second], dim=1)


def contrastive_phase(ctx: StepContext, inputs: StepInputs) -> Stats:
    """H's optimiser steps on the cross-entropy of which code each pair shares (nothing happens
    before the regulariser starts: the step then has no pairs)."""
    if inputs.pairs is None:
        return {}
    h_opt = ctx.optimizers.contrastive
    set_trainable(ctx.contrastive, ctx.contrastive.parameters())
    h_opt.zero_grad(set_to_none=True)
    with ctx.autocast():
        logits = ctx.contrastive(inputs.pair_images.detach()).float()
    loss = F.cross_entropy(logits, inputs.pairs.shared)
    loss.backward()
    _step(ctx, h_opt)
    accuracy = (logits.detach().argmax(dim=1) == inputs.pairs.shared).float().mean()
    return {"cr_loss": loss.detach(), "cr_accuracy": accuracy}


def _contrastive_term(ctx: StepContext, inputs: StepInputs) -> torch.Tensor | float:
    """alpha times H's cross-entropy on the pairs, for G's loss (H frozen); 0 without pairs."""
    if inputs.pairs is None:
        return 0.0
    set_trainable(ctx.contrastive, ())
    with ctx.autocast():
        logits = ctx.contrastive(inputs.pair_images).float()
    return ctx.config.contrastive.alpha * F.cross_entropy(logits, inputs.pairs.shared)


def discriminator_phase(
    ctx: StepContext,
    real: torch.Tensor,
    fake: torch.Tensor,
    latent: Latent,
    draws: torch.Tensor | None = None,
    transformed: torch.Tensor | None = None,
) -> Stats:
    """D's optimiser steps on the adversarial loss (plus lambda * L_I under "both"; the augmented
    term reads `transformed` when given, else transforms `fake` with `draws`)."""
    loss_cfg = ctx.config.loss
    d_opt = ctx.optimizers.d
    set_trainable(ctx.discriminator, _params(d_opt))
    d_opt.zero_grad(set_to_none=True)
    with ctx.autocast():  # one pass over both batches; batch norm keeps per-batch statistics
        real_logits, fake_logits, q = ctx.discriminator.forward_real_fake(real, fake.detach())
    real_logits, fake_logits, q = real_logits.float(), fake_logits.float(), _float(q)
    adversarial = discriminator_loss(real_logits, fake_logits, loss_cfg.adversarial)
    info = _info(ctx, q, latent)
    loss = adversarial
    if loss_cfg.info_update == "both":
        reused = None if transformed is None else transformed.detach()
        loss = loss + info.total + _weighted(ctx, _augmented_ce(ctx, fake.detach(), latent, draws, reused))
    loss.backward()
    _step(ctx, d_opt)
    d_real, d_fake = _real_fake_scores(real_logits.detach(), fake_logits.detach(), loss_cfg.adversarial)
    return {"d_loss": adversarial.detach(), "d_real": d_real, "d_fake": d_fake, **_info_stats(ctx, info)}


def generator_phase(ctx: StepContext, inputs: StepInputs) -> Stats:
    """G's optimiser steps on the generator loss (plus lambda * L_I unless "joint", plus the
    contrastive term once it has started)."""
    fake, latent, draws = inputs.fake, inputs.latent, inputs.draws
    g_opt = ctx.optimizers.g
    set_trainable(ctx.discriminator, _params(g_opt))  # D's own weights stay frozen here
    g_opt.zero_grad(set_to_none=True)
    with ctx.autocast():
        fake_logits, q = ctx.discriminator(fake, with_q=True)
    fake_logits, q = fake_logits.float(), _float(q)
    adversarial = generator_loss(fake_logits, ctx.config.loss.adversarial)
    loss, augmented = adversarial + _contrastive_term(ctx, inputs), None
    if ctx.config.loss.info_update != "joint":
        augmented = _augmented_ce(ctx, fake, latent, draws, inputs.transformed)
        loss = loss + _info(ctx, q, latent).total + _weighted(ctx, augmented)
    loss.backward()
    _step(ctx, g_opt)
    return {"g_loss": adversarial.detach(), **_augmented_stats(ctx, augmented)}


def info_phase(ctx: StepContext, latent: Latent, draws: torch.Tensor | None = None) -> Stats:
    """The "joint" convention's third optimiser steps on lambda * L_I over all of G and D."""
    info_opt = ctx.optimizers.info
    set_trainable(ctx.discriminator, ctx.discriminator.parameters())
    info_opt.zero_grad(set_to_none=True)
    with ctx.autocast():
        fake = ctx.generator(ctx.spec.to_input(latent))
        _, q = ctx.discriminator(fake, with_q=True)
    info = _info(ctx, _float(q), latent)
    augmented = _augmented_ce(ctx, fake, latent, draws)
    (info.total + _weighted(ctx, augmented)).backward()
    _step(ctx, info_opt)
    return {**_info_stats(ctx, info), **_augmented_stats(ctx, augmented)}


def _info_stats(ctx: StepContext, info) -> Stats:
    """Each categorical code's MI bound and each continuous code's info loss, by name."""
    bounds = categorical_mi_bounds(ctx.spec, info.categorical.detach())
    stats = {f"mi_{name}": bounds[i] for i, name in enumerate(ctx.spec.categorical_names)}
    continuous = info.continuous.detach()
    stats.update({f"info_loss_{name}": continuous[i] for i, name in enumerate(ctx.spec.continuous_names)})
    return stats


def _augmented_stats(ctx: StepContext, augmented: torch.Tensor | None) -> Stats:
    if augmented is None:
        return {}
    bounds = categorical_mi_bounds(ctx.spec, augmented.detach())
    return {f"mi_augmented_{name}": bounds[i] for i, name in enumerate(ctx.spec.categorical_names)}


def _info(ctx: StepContext, q, latent: Latent):
    loss = ctx.config.loss
    cat_weights, cont_weights = loss.code_weights(len(ctx.spec.categorical), ctx.spec.continuous)
    return info_terms(q, latent, loss.continuous_info, cat_weights, cont_weights)


def _augmented_on(loss: LossConfig, spec: LatentSpec) -> bool:
    return loss.lambda_augmented > 0 and bool(spec.categorical)


def _augmented_ce(
    ctx: StepContext,
    images: torch.Tensor,
    latent: Latent,
    draws: torch.Tensor | None,
    transformed: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """Each categorical code's cross-entropy when Q reads `images` transformed with `draws` (or
    `transformed`, when the step made them already); None when the augmented term is off."""
    if not _augmented_on(ctx.config.loss, ctx.spec):
        return None
    with ctx.autocast():
        if transformed is None:
            transformed = transform(images, draws, ctx.config.loss, ctx.config.model.image_range)
        _, q = ctx.discriminator(transformed, with_q=True)
    return categorical_info_losses(_float(q).categorical_logits, latent.categorical)


def _weighted(ctx: StepContext, augmented: torch.Tensor | None) -> torch.Tensor | float:
    """The augmented term as it enters a loss: lambda_augmented * the summed cross-entropies."""
    return 0.0 if augmented is None else ctx.config.loss.lambda_augmented * augmented.sum()


def _float(q: QOutput) -> QOutput:
    """Q's output in float32, so the information term is computed in full precision."""
    logits = [lg.float() for lg in q.categorical_logits]
    return QOutput(logits, q.continuous_mean.float(), q.continuous_log_std.float())


def _step(ctx: StepContext, optimizer: torch.optim.Optimizer) -> None:
    """The optimiser's step on gradients averaged over the ranks: one all-reduce per optimiser
    step, over exactly the parameters it updates (why not DDP: `infogan.training.ranks`)."""
    if ctx.world.size > 1:
        ctx.world.average_gradients(_params(optimizer))
    optimizer.step()


def _params(optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def _real_fake_scores(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str) -> list[torch.Tensor]:
    """Mean D(x) and D(G(z)): probabilities for the logistic loss, raw scores for least squares."""
    if kind == "nonsaturating":
        return [torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()]
    return [real_logits.mean(), fake_logits.mean()]
