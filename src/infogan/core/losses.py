"""Pure loss functions: the adversarial game V(D, G) and the information term L_I.

Every function takes logits or Gaussian parameters (never probabilities) and returns tensors
that keep their autograd graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from infogan.core.latent import Latent, LatentSpec
from infogan.core.networks import QOutput

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """D's adversarial loss (to minimise): real images towards 1, generated ones towards 0."""
    if kind == "nonsaturating":
        ones, zeros = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
        return F.binary_cross_entropy_with_logits(real_logits, ones) + F.binary_cross_entropy_with_logits(
            fake_logits, zeros
        )
    if kind == "least_squares":
        return 0.5 * ((real_logits - 1).square().mean() + fake_logits.square().mean())
    raise ValueError(f"unknown adversarial loss {kind!r}")


def generator_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """G's adversarial loss (to minimise): -log D(G(z)) (non-saturating) or least squares."""
    if kind == "nonsaturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "least_squares":
        return 0.5 * (fake_logits - 1).square().mean()
    raise ValueError(f"unknown adversarial loss {kind!r}")


def categorical_info_losses(logits: list[torch.Tensor], codes: torch.Tensor) -> torch.Tensor:
    """Cross-entropy -E[log Q(c_i | x)] of each categorical code, shape (n_categorical,)."""
    if not logits:
        return codes.new_zeros(0, dtype=torch.float32)
    return torch.stack([F.cross_entropy(lg, codes[:, i]) for i, lg in enumerate(logits)])


def continuous_info_losses(mean: torch.Tensor, log_std: torch.Tensor, codes: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-code loss of each continuous code, shape (n_continuous,).

    fixed_std: Gaussian NLL with std 1 (the authors' code); learned_std: Gaussian NLL with Q's
    log-std (the paper's appendix); squared_error: mean squared error.
    """
    error = codes - mean
    if kind == "fixed_std":
        per_sample = 0.5 * error.square() + HALF_LOG_2PI
    elif kind == "learned_std":
        per_sample = 0.5 * (error * torch.exp(-log_std)).square() + log_std + HALF_LOG_2PI
    elif kind == "squared_error":
        per_sample = error.square()
    else:
        raise ValueError(f"unknown continuous info loss {kind!r}")
    return per_sample.mean(dim=0)


@dataclass(frozen=True)
class InfoTerms:
    """The information term of one batch.

    total: lambda-weighted sum to add to a loss; categorical: per-code cross-entropy;
    continuous: per-code loss under the configured convention.
    """

    total: torch.Tensor
    categorical: torch.Tensor
    continuous: torch.Tensor


def info_terms(
    q: QOutput,
    latent: Latent,
    continuous_kind: str,
    lambda_categorical: float | Sequence[float],
    lambda_continuous: float | Sequence[float],
) -> InfoTerms:
    """lambda-weighted -L_I (without the constant H(c)) for a batch generated from `latent`.

    Each lambda is one number for every code of its kind or a sequence with one per code.
    """
    cat = categorical_info_losses(q.categorical_logits, latent.categorical)
    cont = continuous_info_losses(q.continuous_mean, q.continuous_log_std, latent.continuous, continuous_kind)
    total = _weighted_sum(cat, lambda_categorical) + _weighted_sum(cont, lambda_continuous)
    return InfoTerms(total, cat, cont)


def _weighted_sum(losses: torch.Tensor, weights: float | Sequence[float]) -> torch.Tensor:
    if isinstance(weights, (int, float)):
        return weights * losses.sum()
    if len(set(weights)) <= 1:  # one lambda for all: a single multiply
        return (weights[0] if weights else 0.0) * losses.sum()
    return sum((w * loss for w, loss in zip(weights, losses, strict=True)), losses.new_zeros(()))


def categorical_mi_bounds(spec: LatentSpec, cross_entropy: torch.Tensor) -> torch.Tensor:
    """Lower bound on I(c_i; G(z, c)) per categorical code: H(c_i) - CE = log K - CE.

    Made from Python numbers and `cross_entropy` alone (no tensor copied from the host), so it
    can run inside a CUDA graph.
    """
    entropies = spec.categorical_entropy()
    if len(set(entropies)) <= 1:
        return (entropies[0] if entropies else 0.0) - cross_entropy
    return torch.stack([entropy - ce for entropy, ce in zip(entropies, cross_entropy.unbind())])
