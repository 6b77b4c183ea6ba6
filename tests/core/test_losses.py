import math

import pytest
import torch

from infogan.core.latent import Latent, LatentSpec
from infogan.core.losses import (
    HALF_LOG_2PI,
    categorical_info_losses,
    categorical_mi_bounds,
    continuous_info_losses,
    discriminator_loss,
    generator_loss,
    info_terms,
)
from infogan.core.networks import QOutput


def test_uniform_logits_give_log_k_and_zero_bound():
    spec = LatentSpec(noise_dim=1, categorical=(10, 4), continuous=0)
    logits = [torch.zeros(8, 10), torch.zeros(8, 4)]
    codes = torch.tensor([[i % 10, i % 4] for i in range(8)])
    ce = categorical_info_losses(logits, codes)
    assert torch.allclose(ce, torch.tensor([math.log(10), math.log(4)]))
    assert torch.allclose(categorical_mi_bounds(spec, ce), torch.zeros(2), atol=1e-6)


def test_confident_correct_logits_give_bound_near_log_k():
    spec = LatentSpec(noise_dim=1, categorical=(10,), continuous=0)
    codes = torch.arange(10).unsqueeze(1)
    logits = [torch.nn.functional.one_hot(codes[:, 0], 10).float() * 50]
    bound = categorical_mi_bounds(spec, categorical_info_losses(logits, codes))
    assert torch.allclose(bound, torch.tensor([math.log(10)]), atol=1e-5)


def test_gaussian_nll_at_the_mean():
    codes = torch.tensor([[0.3, -0.7]])
    fixed = continuous_info_losses(codes.clone(), torch.zeros(1, 2), codes, "fixed_std")
    assert torch.allclose(fixed, torch.full((2,), HALF_LOG_2PI))
    log_std = torch.tensor([[-1.0, 0.5]])
    learned = continuous_info_losses(codes.clone(), log_std, codes, "learned_std")
    assert torch.allclose(learned, log_std[0] + HALF_LOG_2PI)
    assert torch.allclose(continuous_info_losses(codes.clone(), log_std, codes, "squared_error"), torch.zeros(2))


def test_gaussian_nll_off_the_mean_by_hand():
    codes, mean, log_std = torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([[math.log(2.0)]])
    expected = 0.5 * (1 / 2) ** 2 + math.log(2.0) + HALF_LOG_2PI
    assert math.isclose(continuous_info_losses(mean, log_std, codes, "learned_std").item(), expected, rel_tol=1e-6)
    assert math.isclose(
        continuous_info_losses(mean, log_std, codes, "fixed_std").item(), 0.5 + HALF_LOG_2PI, rel_tol=1e-6
    )
    assert continuous_info_losses(mean, log_std, codes, "squared_error").item() == 1.0


def test_adversarial_losses_by_hand():
    zero = torch.zeros(4)
    assert math.isclose(discriminator_loss(zero, zero, "nonsaturating").item(), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(generator_loss(zero, "nonsaturating").item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(discriminator_loss(torch.ones(4), zero, "least_squares").item(), 0.0)
    assert math.isclose(discriminator_loss(zero, torch.ones(4), "least_squares").item(), 1.0)
    assert math.isclose(generator_loss(zero, "least_squares").item(), 0.5)
    with pytest.raises(ValueError):
        generator_loss(zero, "wasserstein")


def test_info_terms_weight_each_kind_and_keep_the_graph():
    logits = torch.zeros(2, 3, requires_grad=True)
    mean = torch.zeros(2, 1, requires_grad=True)
    q = QOutput([logits], mean, torch.zeros(2, 1))
    latent = Latent(torch.zeros(2, 1), torch.tensor([[0], [1]]), torch.ones(2, 1))
    terms = info_terms(q, latent, "squared_error", lambda_categorical=2.0, lambda_continuous=0.5)
    assert math.isclose(terms.total.item(), 2.0 * math.log(3) + 0.5 * 1.0, rel_tol=1e-6)
    terms.total.backward()
    assert logits.grad.abs().sum() > 0 and mean.grad.abs().sum() > 0


def test_info_terms_take_one_lambda_per_code():
    spec = LatentSpec(noise_dim=2, categorical=(4, 3), continuous=2)
    latent = spec.sample(16, generator=torch.Generator().manual_seed(0))
    q = QOutput([torch.randn(16, 4), torch.randn(16, 3)], torch.randn(16, 2), torch.zeros(16, 2))
    terms = info_terms(q, latent, "fixed_std", [1.0, 3.0], [0.5, 10.0])
    expected = terms.categorical[0] + 3 * terms.categorical[1] + 0.5 * terms.continuous[0] + 10 * terms.continuous[1]
    assert torch.allclose(terms.total, expected)
    same = info_terms(q, latent, "fixed_std", [2.0, 2.0], [0.5, 0.5])
    assert torch.allclose(same.total, 2 * terms.categorical.sum() + 0.5 * terms.continuous.sum())
