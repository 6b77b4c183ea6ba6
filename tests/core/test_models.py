import copy

import pytest
import torch

from infogan.config import ModelConfig
from infogan.core.latent import LatentSpec
from infogan.core.networks import DiscriminatorWithQ, build_networks


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


def _layers(module: torch.nn.Module, kind: type) -> list:
    return [m for m in module.modules() if isinstance(m, kind)]


@pytest.mark.parametrize(
    ("architecture", "size", "channels", "spec"),
    [  # the paper's code sizes for each experiment (appendix C)
        ("faces", 32, 1, LatentSpec(noise_dim=128, categorical=(), continuous=5)),
        ("svhn", 32, 3, LatentSpec(noise_dim=124, categorical=(10,) * 4, continuous=4)),
        ("svhn", 32, 3, LatentSpec(noise_dim=128, categorical=(10,) * 10, continuous=0)),  # CelebA
        ("chairs", 64, 1, LatentSpec(noise_dim=128, categorical=(20,) * 3, continuous=1)),
    ],
)
def test_paper_networks_make_and_read_their_image_size(architecture, size, channels, spec):
    config = ModelConfig(architecture=architecture, image_size=size, image_channels=channels)
    g, d = build_networks(config, spec)
    images = g(spec.to_input(spec.sample(3)))
    assert images.shape == (3, channels, size, size)
    logits, q = d(images)
    assert logits.shape == (3,) and [lg.shape for lg in q.categorical_logits] == [(3, k) for k in spec.categorical]
    assert q.continuous_mean.shape == (3, spec.continuous)


def test_svhn_networks_follow_table_2():
    config = ModelConfig(architecture="svhn", image_size=32, image_channels=3)
    g, d = build_networks(config, LatentSpec(noise_dim=124, categorical=(10,) * 4, continuous=4))
    assert g.body[0].in_features == 168 and g.body[0].out_features == 2 * 2 * 448
    assert [m.out_channels for m in _layers(g, torch.nn.ConvTranspose2d)] == [256, 128, 64, 3]
    assert [m.num_features for m in _layers(g, torch.nn.BatchNorm2d)] == [256]  # BN on the first upconv only
    assert [m.out_channels for m in _layers(d.trunk, torch.nn.Conv2d)] == [64, 128, 256]
    assert [m.num_features for m in _layers(d.trunk, torch.nn.BatchNorm2d)] == [128, 256]


def test_chairs_networks_follow_table_5_with_size_keeping_stride_1_layers():
    config = ModelConfig(architecture="chairs", image_size=64)
    g, d = build_networks(config, LatentSpec(noise_dim=128, categorical=(20,) * 3, continuous=1))
    assert g.body[0].in_features == 189
    sizes = []
    x = torch.randn(2, 256, 8, 8)
    for layer in g.body[7:]:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            sizes.append((layer.out_channels, x.shape[-1]))
    assert sizes == [(256, 8), (256, 8), (128, 16), (64, 32), (1, 64)]
    trunk_out = d.trunk(torch.rand(2, 1, 64, 64))
    assert trunk_out.shape == (2, 256 * 8 * 8)
    assert [m.stride for m in _layers(d.trunk, torch.nn.Conv2d)] == [(2, 2)] * 3 + [(1, 1)] * 2


def test_faces_networks_are_the_mnist_networks_at_32_pixels():
    spec = LatentSpec(noise_dim=128, categorical=(), continuous=5)
    g28, d28 = build_networks(ModelConfig(), spec)
    g32, d32 = build_networks(ModelConfig(architecture="faces", image_size=32), spec)
    kinds = [type(m) for m in g28.body]
    assert kinds == [type(m) for m in g32.body]
    assert g32.body[3].out_features == 128 * 8 * 8 and d32.trunk[6].in_features == 128 * 8 * 8


@pytest.mark.parametrize(("architecture", "size"), [("mnist", 28), ("faces", 32), ("svhn", 32), ("chairs", 64)])
def test_paper_networks_refuse_other_sizes(architecture, size):
    from infogan.errors import InfoGANError

    with pytest.raises(InfoGANError, match=f"makes {size}x{size} images; set model.image_size: {size}"):
        ModelConfig(architecture=architecture, image_size=size * 2)


@pytest.mark.parametrize("width", [16, 64])
def test_small_mnist_networks_are_the_paper_ones_without_the_1024_layers_at_a_width(width):
    spec = LatentSpec()
    g, d = build_networks(ModelConfig(architecture="mnist_small", width=width), spec)
    images = g(spec.to_input(spec.sample(3)))
    logits, q = d(images)
    assert images.shape == (3, 1, 28, 28) and logits.shape == (3,) and q.continuous_mean.shape == (3, 2)
    linear = [m.out_features for net in (g, d) for m in _layers(net, torch.nn.Linear)]
    assert 1024 not in linear and g.body[0].out_features == width * 7 * 7
    assert [m.out_channels for m in _layers(d.trunk, torch.nn.Conv2d)] == [width // 2, width]


def test_small_mnist_networks_put_a_hidden_layer_of_the_chosen_width_in_g_and_d():
    spec = LatentSpec()
    g, d = build_networks(ModelConfig(architecture="mnist_small", width=16, hidden=96), spec)
    images = g(spec.to_input(spec.sample(3)))
    logits, q = d(images)
    assert images.shape == (3, 1, 28, 28) and logits.shape == (3,) and q.continuous_mean.shape == (3, 2)
    assert [(m.in_features, m.out_features) for m in _layers(g, torch.nn.Linear)] == [
        (spec.input_dim, 96),
        (96, 16 * 7 * 7),
    ]
    assert [(m.in_features, m.out_features) for m in _layers(d.trunk, torch.nn.Linear)] == [(16 * 7 * 7, 96)]
    assert d.d_head.in_features == 96 and d.joinable


def test_only_the_small_mnist_networks_take_a_hidden_width():
    from infogan.errors import InfoGANError

    with pytest.raises(InfoGANError, match="only the mnist_small architecture has a hidden layer"):
        ModelConfig(architecture="conv", hidden=128)
    with pytest.raises(InfoGANError, match="model.hidden"):
        ModelConfig(architecture="mnist_small", hidden=-1)


def test_only_networks_with_a_width_take_one():
    from infogan.errors import InfoGANError

    with pytest.raises(InfoGANError, match="only the conv and mnist_small architectures have a width"):
        ModelConfig(architecture="mnist", width=32)
    with pytest.raises(InfoGANError, match="even number"):
        ModelConfig(architecture="mnist_small", width=33)


def _two_calls(d, real, fake):
    real_logits, _ = d(real, with_q=False)
    fake_logits, q = d(fake)
    return real_logits, fake_logits, q


@pytest.mark.parametrize(
    ("architecture", "size", "channels"),
    [("mnist", 28, 1), ("mnist_small", 28, 1), ("svhn", 32, 3), ("chairs", 64, 1), ("conv", 32, 3)],
)
def test_joined_real_fake_pass_equals_two_separate_calls(architecture, size, channels):
    """Outputs, every parameter gradient and the batch-norm running statistics match two calls."""
    spec = LatentSpec(noise_dim=4, categorical=(3,), continuous=2)
    config = ModelConfig(architecture=architecture, image_size=size, image_channels=channels)
    _, joined = build_networks(config, spec)
    joined.double()
    separate = copy.deepcopy(joined)
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(5, channels, size, size, generator=generator, dtype=torch.float64)
    fake = torch.rand(7, channels, size, size, generator=generator, dtype=torch.float64)  # other size too
    results = [joined.forward_real_fake(real, fake), _two_calls(separate, real, fake)]
    for real_logits, fake_logits, q in results:
        codes = q.categorical_logits[0].pow(2).sum() + q.continuous_mean.sum()
        (real_logits.sum() - 2 * fake_logits.sum() + codes).backward()
    (a_real, a_fake, a_q), (b_real, b_fake, b_q) = results
    assert a_real.shape == (5,) and a_fake.shape == (7,)
    torch.testing.assert_close(a_real, b_real)
    torch.testing.assert_close(a_fake, b_fake)
    torch.testing.assert_close(a_q.categorical_logits[0], b_q.categorical_logits[0])
    torch.testing.assert_close(a_q.continuous_log_std, b_q.continuous_log_std)
    for (name, a), b in zip(joined.named_parameters(), separate.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
    for (name, a), b in zip(joined.named_buffers(), separate.buffers()):
        torch.testing.assert_close(a, b, msg=name)
    assert any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in joined.trunk.modules())
    assert joined.joinable  # the paper's and the conv networks take the joined pass, not the fallback


def test_joined_pass_falls_back_to_two_calls_when_batch_norm_is_hidden_in_a_block():
    """A trunk whose norms sit inside a non-Sequential block cannot be split: two calls instead."""

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm1d(6)

        def forward(self, x):
            return self.norm(x)

    spec = LatentSpec(noise_dim=2, categorical=(2,), continuous=0)
    trunk = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 6), Block())
    d = DiscriminatorWithQ(trunk, 6, spec, 0.1)
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2) + 5.0
    expected = _two_calls(copy.deepcopy(d), real, fake)
    got = d.forward_real_fake(real, fake)
    torch.testing.assert_close(got[1], expected[1])
    torch.testing.assert_close(got[2].categorical_logits[0], expected[2].categorical_logits[0])
    assert not d.joinable
    with pytest.raises(ValueError, match="once per batch"):
        d(torch.cat([real, fake]), parts=(3, 3))
