import math

import pytest
import torch

from infogan.core.latent import LatentSpec, traversal_latents
from infogan.errors import InfoGANError

SPEC = LatentSpec(noise_dim=5, categorical=(10, 3), continuous=2)


def test_sample_shapes_ranges_and_priors():
    latent = SPEC.sample(4000, torch.Generator().manual_seed(0))
    assert latent.noise.shape == (4000, 5) and latent.categorical.shape == (4000, 2)
    assert latent.continuous.shape == (4000, 2)
    assert latent.noise.min() >= -1 and latent.noise.max() <= 1
    assert latent.continuous.abs().max() <= 1
    assert latent.categorical[:, 0].max() == 9 and latent.categorical[:, 1].max() == 2
    assert abs(latent.continuous.mean()) < 0.05
    counts = torch.bincount(latent.categorical[:, 0], minlength=10).float() / 4000
    assert torch.all((counts - 0.1).abs() < 0.03)
    normal = LatentSpec(noise_dim=3, continuous=1, noise_prior="normal", continuous_prior="normal")
    draws = normal.sample(4000, torch.Generator().manual_seed(0))
    assert draws.noise.abs().max() > 1.5 and abs(draws.noise.std() - 1) < 0.05


def test_noise_scale_shrinks_the_noise_and_leaves_the_codes():
    scaled = LatentSpec(noise_dim=5, categorical=(10, 3), continuous=2, noise_scale=0.1)
    a = SPEC.sample(64, torch.Generator().manual_seed(2))
    b = scaled.sample(64, torch.Generator().manual_seed(2))
    assert torch.allclose(b.noise, a.noise * 0.1)
    assert torch.equal(b.categorical, a.categorical) and torch.equal(b.continuous, a.continuous)


def test_sampling_is_reproducible_with_a_generator():
    a = SPEC.sample(8, torch.Generator().manual_seed(3))
    b = SPEC.sample(8, torch.Generator().manual_seed(3))
    assert torch.equal(a.noise, b.noise) and torch.equal(a.categorical, b.categorical)


def test_input_layout_is_noise_onehots_continuous():
    latent = SPEC.sample(6, torch.Generator().manual_seed(1))
    x = SPEC.to_input(latent)
    assert x.shape == (6, SPEC.input_dim) == (6, 5 + 10 + 3 + 2)
    assert torch.equal(x[:, :5], latent.noise)
    assert torch.equal(x[:, 5:15].argmax(1), latent.categorical[:, 0])
    assert torch.equal(x[:, 5:15].sum(1), torch.ones(6))
    assert torch.equal(x[:, 15:18].argmax(1), latent.categorical[:, 1])
    assert torch.equal(x[:, 18:], latent.continuous)


def test_names_entropy_and_fixed_codes():
    assert SPEC.code_names == ["c1", "c2", "c3", "c4"]
    assert SPEC.categorical_entropy() == [math.log(10), math.log(3)]
    latent = SPEC.with_codes(SPEC.sample(3), {"c2": 2, "c4": 0.5})
    assert torch.all(latent.categorical[:, 1] == 2) and torch.all(latent.continuous[:, 1] == 0.5)
    with pytest.raises(InfoGANError, match="values 0..2"):
        SPEC.with_codes(SPEC.sample(1), {"c2": 3})
    with pytest.raises(InfoGANError, match="unknown code 'c9'"):
        SPEC.locate("c9")


def test_traversal_of_a_categorical_code():
    latent, columns = traversal_latents(SPEC, "c1", rows=4, generator=torch.Generator().manual_seed(0))
    assert columns == 10 and len(latent) == 40
    grid = latent.categorical[:, 0].view(4, 10)
    assert torch.equal(grid, torch.arange(10).repeat(4, 1))
    noise = latent.noise.view(4, 10, -1)
    assert torch.equal(noise[:, :1].expand_as(noise), noise)  # fixed along each row
    assert not torch.equal(noise[0, 0], noise[1, 0])  # rows differ


def test_traversal_of_a_continuous_code_rows_over_categories():
    latent, columns = traversal_latents(SPEC, "c4", columns=5, value_range=(-2, 2))
    assert columns == 5 and len(latent) == 50
    assert torch.allclose(latent.continuous[:5, 1], torch.linspace(-2, 2, 5))
    assert torch.equal(latent.categorical[:, 0].view(10, 5)[:, 0], torch.arange(10))
    other = latent.continuous[:, 0].view(10, 5)
    assert torch.equal(other[:, :1].expand_as(other), other)
