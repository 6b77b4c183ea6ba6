import math

import pytest
import torch

from helpers import tiny_config
from infogan.config import Config, LossConfig
from infogan.core.networks import build_networks
from infogan.training.augment import (
    DRAWS_PER_IMAGE,
    ELASTIC_DRAWS,
    change_brightness,
    change_stroke_width,
    draw_transforms,
    elastic_offsets,
    random_affine,
    transform,
)
from infogan.training.loop import Trainer
from infogan.training.step import (
    StepContext,
    StepInputs,
    build_optimizers,
    discriminator_phase,
    generator_phase,
    stat_names,
    train_step,
)


def _bar() -> torch.Tensor:
    """One 28x28 image: a vertical bar left of the centre."""
    image = torch.zeros(1, 1, 28, 28)
    image[..., 8:20, 10:12] = 1
    return image


def _draws(angle=0.5, shear=0.5, sx=0.5, sy=0.5, dx=0.5, dy=0.5) -> torch.Tensor:
    return torch.tensor([[angle, shear, sx, sy, dx, dy]])  # 0.5 is the middle of each range: no change


def test_middle_draws_leave_images_as_they_are():
    image = torch.rand(3, 1, 28, 28)
    moved = random_affine(image, torch.full((3, DRAWS_PER_IMAGE), 0.5), 15.0, 2.0, 0.1)
    torch.testing.assert_close(moved, image, atol=1e-5, rtol=0)


def test_the_largest_shift_moves_the_image_by_that_many_pixels():
    # the draws' ranges are symmetric, so which way an end of a range moves does not matter
    moved = random_affine(_bar(), _draws(dx=1.0), 15.0, 2.0, 0.1)
    torch.testing.assert_close(moved, torch.roll(_bar(), shifts=-2, dims=-1), atol=1e-5, rtol=0)
    moved = random_affine(_bar(), _draws(dy=0.0), 15.0, 3.0, 0.1)
    torch.testing.assert_close(moved, torch.roll(_bar(), shifts=3, dims=-2), atol=1e-5, rtol=0)


def test_a_quarter_turn_turns_the_bar_on_its_side():
    moved = random_affine(_bar(), _draws(angle=1.0), 90.0, 0.0, 0.0)
    turned = [torch.rot90(_bar(), k, dims=(-2, -1)) for k in (1, -1)]
    assert min((moved - t).abs().max() for t in turned) < 1e-4
    rows, cols = moved[0, 0].nonzero(as_tuple=True)
    assert cols.max() - cols.min() > 8 and rows.max() - rows.min() < 3  # now wide and flat


def test_scaling_up_spreads_the_ink():
    bigger = random_affine(_bar(), _draws(sx=1.0, sy=1.0), 0.0, 0.0, 0.2)
    smaller = random_affine(_bar(), _draws(sx=0.0, sy=0.0), 0.0, 0.0, 0.2)
    assert smaller.sum() < _bar().sum() < bigger.sum()
    taller = random_affine(_bar(), _draws(sy=1.0), 0.0, 0.0, 0.2)[0, 0].nonzero(as_tuple=True)[0]
    assert taller.max() - taller.min() > 12  # the 12-pixel bar grows in height only


def test_a_shear_slants_the_bar():
    slanted = random_affine(_bar(), _draws(shear=1.0), 0.0, 0.0, 0.0, shear=0.5)[0, 0]
    rows, cols = (slanted > 0.5).nonzero(as_tuple=True)
    top, bottom = cols[rows == rows.min()].float().mean(), cols[rows == rows.max()].float().mean()
    assert abs(top - bottom) > 3  # a 12-pixel bar leans by about 6 pixels


def test_transforms_pass_gradients_to_the_images_and_check_the_draws():
    image = torch.rand(2, 1, 28, 28, requires_grad=True)
    random_affine(image, torch.rand(2, DRAWS_PER_IMAGE), 15.0, 2.0, 0.1).sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="expected"):
        random_affine(image, torch.rand(3, DRAWS_PER_IMAGE), 15.0, 2.0, 0.1)


def test_draws_come_from_the_given_generator():
    a = draw_transforms(5, Config().loss, torch.Generator().manual_seed(1), "cpu")
    b = draw_transforms(5, Config().loss, torch.Generator().manual_seed(1), "cpu")
    assert a.shape == (5, DRAWS_PER_IMAGE) and torch.equal(a, b) and a.min() >= 0 and a.max() < 1


def test_stroke_width_thickens_and_thins_a_bar_by_up_to_a_pixel_a_side():
    bar = _bar() * 2 - 1  # white bar on black, in [-1, 1] as G draws
    ink = [((change_stroke_width(bar, torch.tensor([a])) + 1) / 2).sum().item() for a in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    assert ink[2] == pytest.approx(24)  # 12 x 2 pixels
    assert ink[4] == pytest.approx(14 * 4)  # one pixel more on every side
    assert ink[0] == pytest.approx(0)  # a 2-pixel-wide bar loses both columns
    assert ink == sorted(ink) and ink[3] == pytest.approx((ink[2] + ink[4]) / 2)


def test_stroke_draws_come_after_the_affine_ones_and_are_used_only_when_asked():
    plain = draw_transforms(4, Config().loss, torch.Generator().manual_seed(3), "cpu")
    stroke_only = LossConfig(augment_stroke=0.5)
    with_stroke = draw_transforms(4, stroke_only, torch.Generator().manual_seed(3), "cpu")
    assert with_stroke.shape == (4, DRAWS_PER_IMAGE + 1) and torch.equal(with_stroke[:, :DRAWS_PER_IMAGE], plain)
    images = torch.rand(4, 1, 28, 28)
    affine_loss = tiny_config(**{"loss.lambda_augmented": 1.0}).loss
    stroke_loss = tiny_config(**{"loss.lambda_augmented": 1.0, "loss.augment_stroke": 0.5}).loss
    ranges = (
        affine_loss.augment_degrees,
        affine_loss.augment_shift,
        affine_loss.augment_scale,
        affine_loss.augment_shear,
    )
    torch.testing.assert_close(transform(images, plain, affine_loss), random_affine(images, plain, *ranges))
    stroked = change_stroke_width(images, (with_stroke[:, -1] * 2 - 1) * 0.5)
    torch.testing.assert_close(transform(images, with_stroke, stroke_loss), random_affine(stroked, plain, *ranges))
    for draws, loss in ((plain, stroke_loss), (with_stroke, affine_loss)):  # a column short or one too many
        with pytest.raises(ValueError, match="draw_transforms"):
            transform(images, draws, loss)


def test_an_elastic_warp_is_smooth_bounded_and_nothing_at_its_middle_draws():
    still = elastic_offsets(torch.full((2, ELASTIC_DRAWS), 0.5), (28, 28), 3.0)
    assert still.shape == (2, 28, 28, 2) and still.abs().max() < 1e-6
    offsets = elastic_offsets(torch.rand(2, ELASTIC_DRAWS, generator=torch.Generator().manual_seed(4)), (28, 28), 3.0)
    pixels = offsets * 14  # grid units to pixels (a 28-pixel side spans 2)
    assert pixels.abs().max() <= 3.0 * 1.3  # bicubic may overshoot its control points a little
    assert pixels.abs().max() > 0.5
    assert (pixels[:, 1:] - pixels[:, :-1]).abs().max() < 1.0  # neighbours move alike: a warp, not noise
    bar = _bar()
    warped = random_affine(bar, _draws(), 0.0, 0.0, 0.0, 0.0, offsets[:1])
    assert not torch.allclose(warped, bar)

    def centre(image):  # the ink's centre of mass (row, column)
        rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
        return torch.stack([(image * rows).sum(), (image * cols).sum()]) / image.sum()

    assert (centre(warped[0, 0]) - centre(bar[0, 0])).abs().max() < 3.0  # bent in place, not moved away


def test_elastic_draws_come_last_and_the_config_decides_the_columns():
    loss = tiny_config(**{"loss.lambda_augmented": 1.0, "loss.augment_stroke": 0.5, "loss.augment_elastic": 2.0}).loss
    draws = draw_transforms(3, loss, torch.Generator().manual_seed(5), "cpu")
    assert draws.shape == (3, DRAWS_PER_IMAGE + 1 + ELASTIC_DRAWS)
    images = torch.rand(3, 1, 28, 28)
    stroked = change_stroke_width(images, (draws[:, DRAWS_PER_IMAGE] * 2 - 1) * 0.5)
    ranges = (loss.augment_degrees, loss.augment_shift, loss.augment_scale, loss.augment_shear)
    offsets = elastic_offsets(draws[:, -ELASTIC_DRAWS:], (28, 28), 2.0)
    expected = random_affine(stroked, draws[:, :DRAWS_PER_IMAGE], *ranges, offsets)
    torch.testing.assert_close(transform(images, draws, loss), expected)
    with pytest.raises(ValueError, match="draw_transforms"):
        transform(images, draws[:, : DRAWS_PER_IMAGE + 1], loss)


def test_brightness_keeps_black_white_and_order_and_moves_the_greys_both_ways():
    ramp = torch.linspace(0, 1, 11).view(1, 1, 1, 11).repeat(3, 1, 1, 1)
    out = change_brightness(ramp, torch.tensor([1 / 1.5, 1.0, 1.5]))
    assert out[:, ..., 0].max() < 0.02 and torch.allclose(out[:, ..., -1], torch.ones(3, 1, 1))
    torch.testing.assert_close(out[1, ..., 1:], ramp[1, ..., 1:])  # exponent 1: unchanged (above the floor)
    assert (out[0, ..., 1:-1] > ramp[0, ..., 1:-1]).all() and (out[2, ..., 1:-1] < ramp[2, ..., 1:-1]).all()
    assert (out.diff(dim=-1) >= 0).all()  # the order of intensities is kept
    signed = change_brightness(ramp * 2 - 1, torch.tensor([1 / 1.5, 1.0, 1.5]), (-1.0, 1.0))  # a tanh range
    torch.testing.assert_close(signed, out * 2 - 1)
    images = torch.rand(3, 1, 28, 28, requires_grad=True)
    change_brightness(images, torch.tensor([0.5, 1.0, 2.0])).sum().backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_brightness_draws_come_after_the_stroke_and_before_the_elastic_ones():
    keys = {"loss.lambda_augmented": 1.0, "loss.augment_stroke": 0.5, "loss.augment_elastic": 2.0}
    loss = tiny_config(**keys, **{"loss.augment_gamma": 0.5}).loss
    draws = draw_transforms(3, loss, torch.Generator().manual_seed(5), "cpu")
    assert draws.shape == (3, DRAWS_PER_IMAGE + 2 + ELASTIC_DRAWS)
    without = tiny_config(**keys).loss
    assert draw_transforms(3, without, torch.Generator().manual_seed(5), "cpu").shape == (
        3,
        DRAWS_PER_IMAGE + 1 + ELASTIC_DRAWS,
    )
    images = torch.rand(3, 1, 28, 28)
    stroked = change_stroke_width(images, (draws[:, DRAWS_PER_IMAGE] * 2 - 1) * 0.5)
    brightened = change_brightness(stroked, 1.5 ** (draws[:, DRAWS_PER_IMAGE + 1] * 2 - 1))
    ranges = (loss.augment_degrees, loss.augment_shift, loss.augment_scale, loss.augment_shear)
    offsets = elastic_offsets(draws[:, -ELASTIC_DRAWS:], (28, 28), 2.0)
    expected = random_affine(brightened, draws[:, :DRAWS_PER_IMAGE], *ranges, offsets)
    torch.testing.assert_close(transform(images, draws, loss), expected)
    with pytest.raises(ValueError, match="draw_transforms"):
        transform(images, draws, without)


def _context(info_update: str, lambda_augmented: float):
    config = tiny_config(**{"loss.info_update": info_update, "loss.lambda_augmented": lambda_augmented})
    spec = config.latent
    torch.manual_seed(0)
    g, d = build_networks(config.model, spec)
    return StepContext(config, spec, g, d, build_optimizers(config, g, d))


def _gradients(ctx, phase: str, draws: torch.Tensor, share: bool = False) -> dict[str, torch.Tensor]:
    """Gradients one phase leaves on G and D (the optimisers' steps run, then are undone); with
    `share` the phase is handed the transformed images, as a step hands them over."""
    torch.manual_seed(1)
    latent, real = ctx.spec.sample(16), torch.rand(16, 1, 28, 28)
    fake = ctx.generator(ctx.spec.to_input(latent))
    shared = transform(fake, draws, ctx.config.loss, ctx.config.model.image_range) if share else None
    states = [{k: v.clone() for k, v in m.state_dict().items()} for m in (ctx.generator, ctx.discriminator)]
    for module in (ctx.generator, ctx.discriminator):
        module.zero_grad(set_to_none=True)
    if phase == "d":
        discriminator_phase(ctx, real, fake, latent, draws, shared)
    else:
        generator_phase(ctx, StepInputs(real, fake, latent, draws, transformed=shared))
    grads = {
        f"{tag}.{name}": p.grad.clone()
        for tag, module in (("g", ctx.generator), ("d", ctx.discriminator))
        for name, p in module.named_parameters()
        if p.grad is not None
    }
    for module, state in zip((ctx.generator, ctx.discriminator), states):
        module.load_state_dict(state)
    return grads


@pytest.mark.parametrize("phase", ["d", "g"])
def test_the_augmented_term_adds_to_the_gradients_of_the_parameters_the_info_term_trains(phase):
    draws = torch.rand(16, DRAWS_PER_IMAGE, generator=torch.Generator().manual_seed(2))
    plain = _gradients(_context("both", 0.0), phase, draws)
    augmented = _gradients(_context("both", 1.0), phase, draws)
    assert plain.keys() == augmented.keys()  # the same parameters get gradients
    differ = {name for name in plain if not torch.equal(plain[name], augmented[name])}
    if phase == "d":  # D's step: trunk and Q heads, never G (the generated batch is detached)
        assert not any(name.startswith("g.") for name in plain)
        assert any(name.startswith("d.q_heads.") for name in differ) and any(".trunk." in f".{n}" for n in differ)
    else:  # G's step: every G weight feels Q's reading of the transformed images
        assert {name for name in plain if name.startswith("g.")} <= differ
        assert not any(name.startswith("d.") for name in plain)  # D stays frozen


def test_the_augmented_term_stays_out_of_the_adversarial_only_d_step():
    draws = torch.rand(16, DRAWS_PER_IMAGE, generator=torch.Generator().manual_seed(2))
    plain = _gradients(_context("generator_q", 0.0), "d", draws)
    augmented = _gradients(_context("generator_q", 1.0), "d", draws)
    assert all(torch.equal(plain[name], augmented[name]) for name in plain)


def test_a_step_with_the_augmented_term_needs_its_draws():
    ctx = _context("both", 1.0)
    with pytest.raises(ValueError, match="draws"):
        train_step(ctx, torch.rand(16, 1, 28, 28), ctx.spec.sample(16))


@pytest.mark.parametrize("info_update", ["both", "generator_q", "joint"])
def test_runs_with_the_augmented_term_are_reproducible_and_differ_from_plain_runs(train_slice, info_update):
    config = tiny_config(**{"loss.lambda_augmented": 1.0, "loss.info_update": info_update})
    runs = [Trainer(c, train_slice) for c in (config, config, config.replace(**{"loss.lambda_augmented": 0.0}))]
    for run in runs:
        run.fit()
    first, again, plain = (run.generator.state_dict() for run in runs)
    assert all(torch.equal(value, again[name]) for name, value in first.items())
    assert not torch.equal(first["body.0.weight"], plain["body.0.weight"])


def test_turning_the_term_on_leaves_the_run_latents_alone(train_slice):
    config = tiny_config(**{"optim.steps": 3})
    plain, augmented = (
        Trainer(config, train_slice),
        Trainer(config.replace(**{"loss.lambda_augmented": 2.0}), train_slice),
    )
    seen = {id(plain): [], id(augmented): []}
    record = lambda trainer: seen[id(trainer)].append(trainer.latent_rng.get_state())  # noqa: E731
    for trainer in (plain, augmented):
        trainer.fit(callbacks=[record])
    assert all(torch.equal(a, b) for a, b in zip(seen[id(plain)], seen[id(augmented)], strict=True))
    assert not torch.equal(augmented.augment_rng.get_state(), plain.augment_rng.get_state())  # drawn from


@pytest.mark.parametrize("info_update", ["both", "generator_q", "joint"])
def test_steps_with_the_term_report_the_bound_from_transformed_images(info_update):
    ctx = _context(info_update, 1.0)
    names = stat_names(ctx.config)
    assert names[-1] == "mi_augmented_c1" and "mi_augmented_c1" not in stat_names(Config())
    stats = train_step(ctx, torch.rand(16, 1, 28, 28), ctx.spec.sample(16), torch.rand(16, DRAWS_PER_IMAGE))
    assert set(stats) == set(names) and all(torch.isfinite(value) for value in stats.values())
    assert stats["mi_augmented_c1"] <= math.log(10) + 1e-6  # a bound on I(c1; x) cannot pass H(c1)


def test_with_identity_transforms_the_augmented_bound_is_the_plain_one():
    # under "joint" both are measured in the same info update, on the same images and weights
    ctx = _context("joint", 1.0)
    identity = {"augment_degrees": 0.0, "augment_shear": 0.0, "augment_scale": 0.0, "augment_shift": 0.0}
    ctx.config = ctx.config.replace(**{f"loss.{k}": v for k, v in identity.items()})
    stats = train_step(ctx, torch.rand(16, 1, 28, 28), ctx.spec.sample(16), torch.rand(16, DRAWS_PER_IMAGE))
    torch.testing.assert_close(stats["mi_augmented_c1"], stats["mi_c1"], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("info_update", "generator_steps", "made"), [("both", 1, 1), ("both", 2, 2), ("joint", 1, 1)])
def test_a_step_transforms_each_generated_batch_once(monkeypatch, info_update, generator_steps, made):
    """D's and G's updates read one transformed copy of the step's generated images (G's second
    update, on regenerated images, makes its own; "joint"'s info update generates its own)."""
    import infogan.training.step as step_module

    config = tiny_config(
        **{"loss.info_update": info_update, "loss.lambda_augmented": 1.0, "optim.generator_steps": generator_steps}
    )
    torch.manual_seed(0)
    g, d = build_networks(config.model, config.latent)
    ctx = StepContext(config, config.latent, g, d, build_optimizers(config, g, d))
    calls = []
    monkeypatch.setattr(step_module, "transform", lambda *a, **k: calls.append(1) or transform(*a, **k))
    draws = draw_transforms(16, config.loss, torch.Generator().manual_seed(1), "cpu")
    train_step(ctx, torch.rand(16, 1, 28, 28), config.latent.sample(16), draws)
    assert len(calls) == made


def test_the_shared_transformed_copy_gives_d_and_g_the_gradients_of_their_own_copies():
    """Reusing the step's transformed images changes no gradient: D's update reads them detached,
    G's update through them, exactly as when each transforms the generated images itself."""
    ctx = _context("both", 1.0)
    draws = torch.rand(16, DRAWS_PER_IMAGE, generator=torch.Generator().manual_seed(2))
    for phase in ("d", "g"):
        own = _gradients(ctx, phase, draws)
        shared = _gradients(ctx, phase, draws, share=True)
        assert own.keys() == shared.keys()
        for name in own:
            torch.testing.assert_close(shared[name], own[name], rtol=1e-5, atol=1e-6)
