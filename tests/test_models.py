import pytest
import torch

from infogan.config import ModelConfig
from infogan.latent import LatentSpec
from infogan.models import build_networks


@pytest.mark.parametrize(
    "spec",
    [
        LatentSpec(noise_dim=62, categorical=(10,), continuous=2),
        LatentSpec(noise_dim=8, categorical=(3, 5, 7), continuous=0),
        LatentSpec(noise_dim=0, categorical=(), continuous=4),
        LatentSpec(noise_dim=16, categorical=(2,), continuous=1, noise_prior="normal"),
    ],
)
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_shapes_for_any_code_mix(spec, activation):
    g, d = build_networks(ModelConfig(output_activation=activation), spec)
    images = g(spec.to_input(spec.sample(4)))
    assert images.shape == (4, 1, 28, 28)
    low = 0.0 if activation == "sigmoid" else -1.0
    assert images.min() >= low and images.max() <= 1.0
    logits, q = d(images)
    assert logits.shape == (4,)
    assert [lg.shape for lg in q.categorical_logits] == [(4, k) for k in spec.categorical]
    assert q.continuous_mean.shape == q.continuous_log_std.shape == (4, spec.continuous)
    assert set(d.q_heads.heads) == set(spec.code_names)


def test_batch_of_one_in_eval_mode_keeps_its_batch_dimension():
    spec = LatentSpec()
    g, d = build_networks(ModelConfig(), spec)
    g.eval(), d.eval()
    logits, q = d(g(spec.to_input(spec.sample(1))))
    assert logits.shape == (1,) and q.categorical_logits[0].shape == (1, 10) and q.continuous_mean.shape == (1, 2)


def test_q_and_adversarial_parameters_partition_the_discriminator():
    _, d = build_networks(ModelConfig(), LatentSpec())
    q_ids = {id(p) for p in d.q_parameters()}
    adv_ids = {id(p) for p in d.adversarial_parameters()}
    assert not q_ids & adv_ids
    assert q_ids | adv_ids == {id(p) for p in d.parameters()}


def test_without_q_the_head_is_skipped():
    _, d = build_networks(ModelConfig(), LatentSpec())
    logits, q = d(torch.rand(2, 1, 28, 28), with_q=False)
    assert q is None and logits.shape == (2,)


def test_leaky_slope_is_a_config_value():
    _, d = build_networks(ModelConfig(leaky_slope=0.2), LatentSpec())
    slopes = {m.negative_slope for m in d.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.2}
