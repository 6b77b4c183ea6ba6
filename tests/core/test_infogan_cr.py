"""InfoGAN (modified) and InfoGAN-CR: the networks of InfoGAN-CR's code, spectral norm, G steps
per D step and the contrastive regulariser (pairs, H's update, G's term, start, checkpoints)."""

import pytest
import torch
from torch import nn

import infogan.checkpoint as ckpt
from infogan.config import resolve_config
from infogan.core.contrastive import ContrastiveConfig, sample_pairs
from infogan.core.latent import LatentSpec
from infogan.core.networks import build_contrastive, build_networks
from infogan.errors import InfoGANError
from infogan.training.loop import Trainer
from infogan.training.monitoring import StatsWindow
from infogan.training.step import StepContext, build_optimizers, stat_names, train_step


def _config(*overrides: str):
    tiny = ["optim.batch_size=8", "optim.steps=6", "logging.tensorboard=false", "logging.log_every=2",
            "logging.checkpoint_every=2", "logging.image_every=100", "runtime.device=cpu"]  # fmt: skip
    return resolve_config("dsprites", overrides=[*tiny, *overrides])


def _images(n: int = 64) -> torch.Tensor:
    """Made-up sprites: a bright square of random size and place on black, uint8 (n, 1, 64, 64)."""
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(n, 1, 64, 64, dtype=torch.uint8)
    for i in range(n):
        size, x, y = (int(v) for v in torch.randint(4, 20, (3,), generator=g))
        images[i, 0, y : y + size, x : x + size] = 255
    return images


def _sn_layers(module: nn.Module) -> tuple[int, int]:
    """(layers with spectral norm, linear/conv layers in all)."""
    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    return sum(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers), len(layers)


def test_the_networks_have_infogan_crs_shapes_and_spectral_norm_where_it_puts_it():
    config = _config()
    g, d = build_networks(config.model, config.latent)
    images = g(config.latent.to_input(config.latent.sample(4)))
    assert images.shape == (4, 1, 64, 64) and images.min() >= 0 and images.max() <= 1
    convs = [m for m in d.trunk if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [32, 32, 64, 64]
    assert not any(isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) for m in d.modules())
    ups = [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert ups == [64, 32, 32, 1]
    assert _sn_layers(d) == (12, 12)  # 4 convs, FC128, D head, Q's FC128 and its 5 code heads
    logits, q = d(images)
    assert logits.shape == (4,) and q.continuous_mean.shape == (4, 5)
    h = build_contrastive(config.model, 5)
    assert h(torch.cat([images, images], 1)).shape == (4, 5)
    with_sn, layers = _sn_layers(h)
    assert with_sn == layers - 1 and not nn.utils.parametrize.is_parametrized(h[-1], "weight")
    plain = _config("model.spectral_norm=false")
    assert _sn_layers(build_networks(plain.model, plain.latent)[1])[0] == 0


def test_spectral_norm_works_with_any_network_family():
    config = resolve_config("mnist", overrides=["model.spectral_norm=true"])
    _, d = build_networks(config.model, config.latent)
    with_sn, layers = _sn_layers(d)
    assert with_sn == layers > 0
    d(torch.rand(4, 1, 28, 28))  # the forward pass (and its power iteration) runs


def test_the_architecture_checks_its_image_size_and_cr_needs_a_network_with_h():
    with pytest.raises(InfoGANError, match="makes 64x64 images"):
        _config("model.image_size=32")
    with pytest.raises(InfoGANError, match="has no contrastive network"):
        resolve_config("mnist", overrides=["contrastive.alpha=1"])
    with pytest.raises(InfoGANError, match="generator_steps must be between 1 and 10"):
        _config("optim.generator_steps=0")


def _adam_steps(optimizer: torch.optim.Optimizer) -> int:
    return int(next(iter(optimizer.state.values()))["step"])


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_g_takes_generator_steps_updates_per_d_update(steps):
    config = _config(f"optim.generator_steps={steps}")
    g, d = build_networks(config.model, config.latent)
    ctx = StepContext(config, config.latent, g, d, build_optimizers(config, g, d))
    train_step(ctx, torch.rand(8, 1, 64, 64), config.latent.sample(8))
    assert _adam_steps(ctx.optimizers.d) == 1 and _adam_steps(ctx.optimizers.g) == steps


def test_pairs_share_the_noise_and_one_code_and_keep_the_others_a_gap_apart():
    spec = LatentSpec(noise_dim=3, categorical=(4,), continuous=3)
    pairs = sample_pairs(spec, 4000, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(pairs.first.noise, pairs.second.noise)
    shared = pairs.shared
    assert set(shared.tolist()) == {0, 1, 2, 3} and abs((shared == 2).float().mean() - 0.25) < 0.03
    cat_same = pairs.first.categorical[:, 0] == pairs.second.categorical[:, 0]
    assert cat_same[shared == 0].all() and cat_same[shared != 0].float().mean() < 0.4  # 1/4 by chance
    for j in range(3):
        a, b = pairs.first.continuous[:, j], pairs.second.continuous[:, j]
        assert torch.equal(a[shared == j + 1], b[shared == j + 1])
        apart = (a - b).abs()[shared != j + 1]
        assert apart.min() >= 0.5 - 1e-6 and a.abs().max() <= 1 and b.abs().max() <= 1
    loose = sample_pairs(spec, 4000, 0.0, torch.Generator().manual_seed(0))
    assert (loose.first.continuous - loose.second.continuous).abs().min() < 0.01  # no gap: drawn independently


def test_the_gap_schedule_and_the_start():
    cfg = ContrastiveConfig(alpha=1.0, start_step=100, gap=0.5, gap_decrease=0.2, gap_every=10)
    assert [cfg.gap_at(s) for s in (100, 109, 110, 125, 500)] == pytest.approx([0.5, 0.5, 0.3, 0.1, 0.0])
    assert not cfg.active(99) and cfg.active(100) and not ContrastiveConfig().active(10**6)


def _phase_context(alpha: float):
    config = _config(f"contrastive.alpha={alpha}")
    torch.manual_seed(0)
    g, d = build_networks(config.model, config.latent)
    h = build_contrastive(config.model, 5)
    optimizers = build_optimizers(config, g, d)
    optimizers.contrastive = torch.optim.Adam(h.parameters(), lr=config.contrastive.lr)
    return StepContext(config, config.latent, g, d, optimizers, contrastive=h)


def test_h_takes_one_update_per_step_with_pairs_and_none_without():
    ctx = _phase_context(2.0)
    before = {k: v.clone() for k, v in ctx.contrastive.state_dict().items()}
    stats = train_step(ctx, torch.rand(8, 1, 64, 64), ctx.spec.sample(8))
    assert not ctx.optimizers.contrastive.state and "cr_loss" not in stats  # no pairs: H does nothing
    pairs = sample_pairs(ctx.spec, 8, 0.0, torch.Generator().manual_seed(1))
    stats = train_step(ctx, torch.rand(8, 1, 64, 64), ctx.spec.sample(8), pairs=pairs)
    assert _adam_steps(ctx.optimizers.contrastive) == 1
    assert {k for k, v in ctx.contrastive.state_dict().items() if not torch.equal(v, before[k])}
    assert 0 <= stats["cr_accuracy"] <= 1 and stats["cr_loss"] > 0


def _g_gradients(alpha: float) -> list[torch.Tensor]:
    from infogan.training.step import StepInputs, _pair_images, generator_phase

    ctx = _phase_context(alpha)
    pairs = sample_pairs(ctx.spec, 8, 0.0, torch.Generator().manual_seed(1))
    latent = ctx.spec.sample(8, torch.Generator().manual_seed(2))
    fake = ctx.generator(ctx.spec.to_input(latent))
    h_before = [p.clone() for p in ctx.contrastive.parameters()]
    d_before = [p.clone() for p in ctx.discriminator.parameters()]
    grads = []
    ctx.optimizers.g.register_step_pre_hook(
        lambda opt, *_: grads.extend(p.grad.clone() for p in ctx.generator.parameters())
    )
    generator_phase(ctx, StepInputs(None, fake, latent, None, pairs, _pair_images(ctx, pairs)))
    assert all(p.grad is None for p in ctx.contrastive.parameters())  # H frozen in G's update
    assert all(torch.equal(a, b) for a, b in zip(h_before, ctx.contrastive.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(d_before, ctx.discriminator.parameters()))
    return grads


def test_alpha_scales_the_contrastive_term_in_gs_gradient():
    none, some, more = _g_gradients(1e-9), _g_gradients(1.0), _g_gradients(2.0)
    assert not all(torch.allclose(a, b) for a, b in zip(none, some))
    # G's gradient is adversarial + info + alpha * CR: linear in alpha
    for a, b, c in zip(none, some, more):
        assert torch.allclose(c - a, 2 * (b - a), atol=1e-5, rtol=1e-3)


def test_h_starts_at_its_step_and_a_resume_across_the_start_is_bit_identical(tmp_path):
    config = _config("contrastive.alpha=2", "contrastive.start_step=3", "contrastive.gap=0.3")
    images = _images()
    seen = []
    straight = Trainer(config, images, tmp_path / "straight", progress=False)
    straight.fit(callbacks=[lambda t: seen.append((t.step, t.state.contrastive is not None))])
    assert seen == [(1, False), (2, False), (3, False), (4, True), (5, True), (6, True)]
    assert "contrastive" in straight.optimizers.named()
    records = [line for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert '"cr_loss"' not in records[0] and '"cr_loss"' in records[-1]  # logged once it runs

    for stop in (2, 4):  # a checkpoint before H exists, and one holding H and its optimiser
        first = Trainer(config.replace(**{"optim.steps": stop}), images, tmp_path / f"cut{stop}", progress=False)
        first.fit()
        snapshot, _ = first.run.latest_valid()
        assert ("contrastive" in snapshot.networks) == (stop > 3)
        resumed = Trainer(config, images, tmp_path / f"cut{stop}", progress=False)
        resumed.restore(snapshot)
        resumed.fit()
        for name, net in straight.state.networks().items():
            other = resumed.state.networks()[name].state_dict()
            assert all(torch.equal(v, other[k]) for k, v in net.state_dict().items()), (stop, name)


def test_a_checkpoint_with_h_needs_the_regulariser_on(tmp_path):
    config = _config("contrastive.alpha=2", "contrastive.start_step=0", "optim.steps=2")
    trainer = Trainer(config, _images(), tmp_path / "run", progress=False)
    trainer.fit()
    snapshot = ckpt.load_snapshot(ckpt.latest_checkpoint(tmp_path / "run"))
    off = Trainer(_config("optim.steps=2"), _images(), progress=False)
    with pytest.raises(InfoGANError, match="contrastive.alpha: 0"):
        off.state.load(snapshot, off.config, capturable=False)


def test_stat_names_and_a_window_over_the_start():
    config = _config("contrastive.alpha=1")
    assert stat_names(config)[-2:] == ["cr_loss", "cr_accuracy"] and "cr_loss" not in stat_names(_config())
    window = StatsWindow(["a", "cr_loss"], torch.device("cpu"))
    window.add({"a": torch.tensor(1.0)})
    assert "cr_loss" not in window.flush(8)
    window.add({"a": torch.tensor(1.0)})
    window.add({"a": torch.tensor(3.0), "cr_loss": torch.tensor(0.5)})
    values = window.flush(8)
    assert values["a"] == 2.0 and values["cr_loss"] == 0.5
