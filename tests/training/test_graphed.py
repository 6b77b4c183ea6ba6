"""CUDA graphs: the captured step trains exactly as the eager one, and the option fails cleanly
where it cannot work. The CUDA tests run only where PyTorch sees a GPU."""

import dataclasses
import math

import pytest
import torch

from helpers import tiny_config
from infogan.cli import main
from infogan.config import resolve_config
from infogan.core.losses import categorical_mi_bounds
from infogan.errors import InfoGANError
from infogan.runtime import use_cuda_graphs
from infogan.training.loop import Trainer

FOLDER_PRESETS = ("celeba", "chairs3d", "faces3d")  # read a folder: the config needs a path
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_cuda_graphs_on_cpu_is_refused_with_the_fix(train_slice):
    with pytest.raises(InfoGANError, match="--device cuda"):
        Trainer(tiny_config(**{"runtime.device": "cpu", "runtime.cuda_graphs": "on"}), train_slice)


def test_cuda_graphs_default_to_on_for_cuda_alone():
    assert use_cuda_graphs("auto", False, torch.device("cuda"))
    assert not use_cuda_graphs("auto", True, torch.device("cuda"))  # compiled networks: off
    assert not use_cuda_graphs("auto", False, torch.device("cpu"))
    assert not use_cuda_graphs("off", False, torch.device("cuda"))
    with pytest.raises(InfoGANError, match="choose one"):
        use_cuda_graphs("on", True, torch.device("cuda"))


def test_a_cpu_trainer_steps_eagerly(train_slice):
    trainer = Trainer(tiny_config(), train_slice)
    assert not trainer.cuda_graphs and trainer._graphed is None


def test_cli_cuda_graphs_on_cpu_is_a_message_not_a_traceback(tmp_path, data_dir, capsys):
    args = ["train", "--out", str(tmp_path / "run"), "--max-steps", "2", "--data-dir", str(data_dir)]
    code = main([*args, "--device", "cpu", "--cuda-graphs", "--set", "optim.batch_size=16"])
    err = capsys.readouterr().err
    assert code == 2 and "--device cuda" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_mi_bounds_need_no_tensor_from_the_host():
    one_k = tiny_config().latent
    ce = torch.tensor([0.5])
    assert torch.allclose(categorical_mi_bounds(one_k, ce), torch.tensor([math.log(10) - 0.5]))
    mixed = tiny_config(**{"latent.categorical": [10, 4]}).latent
    ce = torch.tensor([0.5, 0.25])
    expected = torch.tensor([math.log(10) - 0.5, math.log(4) - 0.25])
    assert torch.allclose(categorical_mi_bounds(mixed, ce), expected)


def test_graph_safe_context_turns_off_the_autocast_cache(train_slice):
    trainer = Trainer(tiny_config(**{"runtime.precision": "bf16"}), train_slice)
    safe = dataclasses.replace(trainer._context, graph_safe=True)
    with safe.autocast():
        assert not torch.is_autocast_cache_enabled()
    with trainer._context.autocast():
        assert torch.is_autocast_cache_enabled()


def test_a_checkpoint_from_a_graphed_run_resumes_without_graphs(train_slice):
    saved = Trainer(tiny_config(), train_slice)
    saved.fit()
    snapshot = saved.snapshot()
    for groups in snapshot.optimizers.values():  # as a --cuda-graphs run saves them
        for group in groups["param_groups"]:
            group["capturable"] = True
    resumed = Trainer(tiny_config(**{"optim.steps": 6}), train_slice)
    resumed.restore(snapshot)
    assert all(not g["capturable"] for opt in resumed.optimizers.named().values() for g in opt.param_groups)
    assert resumed.fit() and resumed.step == 6


# -- on a GPU ----------------------------------------------------------------------------


def _trainer(train_slice, graphs: bool, **overrides) -> Trainer:
    runtime = {"runtime.device": "cuda", "runtime.cuda_graphs": "on" if graphs else "off"}
    config = tiny_config(**{"optim.steps": 8, "optim.batch_size": 32, **runtime, **overrides})
    return Trainer(config, train_slice, progress=False)


@cuda
@pytest.mark.parametrize("info_update", ["both", "generator_q", "joint"])
def test_graphed_steps_train_as_eager_steps(train_slice, info_update, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    eager = _trainer(train_slice, False, **{"loss.info_update": info_update})
    graphed = _trainer(train_slice, True, **{"loss.info_update": info_update})
    for step in range(8):  # 3 eager warm-up steps, a capture, then replays
        latent = eager.spec.sample(32, eager.latent_rng, "cuda")
        real = eager.batches.batch(step)
        expected = eager.train_on(real, latent)
        got = graphed.train_on(real, latent)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert graphed._graphed.captured
    for name in ("generator", "discriminator"):
        ours = getattr(graphed, name).state_dict()
        for key, value in getattr(eager, name).state_dict().items():
            torch.testing.assert_close(ours[key], value, rtol=1e-4, atol=1e-5, msg=f"{name}.{key}")


@cuda
@pytest.mark.parametrize("info_update", ["both", "joint"])
def test_graphed_steps_with_the_augmented_term_train_as_eager_steps(train_slice, info_update, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    overrides = {"loss.info_update": info_update, "loss.lambda_augmented": 2.0, "loss.augment_shear": 0.3}
    eager, graphed = _trainer(train_slice, False, **overrides), _trainer(train_slice, True, **overrides)
    for step in range(8):  # each draws its latents, then its transforms, from its own generator
        expected = eager.train_on(eager.batches.batch(step), eager.spec.sample(32, eager.latent_rng, "cuda"))
        got = graphed.train_on(graphed.batches.batch(step), graphed.spec.sample(32, graphed.latent_rng, "cuda"))
        torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)  # grid_sample's backward adds atomically
    assert graphed._graphed.captured
    ours = graphed.generator.state_dict()
    for key, value in eager.generator.state_dict().items():
        torch.testing.assert_close(ours[key], value, rtol=1e-3, atol=1e-4, msg=key)


@cuda
@pytest.mark.parametrize("preset", ["mnist", "svhn", "celeba", "chairs3d", "faces3d", "dsprites"])
def test_every_preset_network_trains_the_same_graphed(preset, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    overrides = ["optim.batch_size=8", "optim.steps=6", "logging.tensorboard=false", "data.path=unused"]
    config = resolve_config(preset, None, overrides if preset in FOLDER_PRESETS else overrides[:3])
    model = config.model
    images = torch.randint(0, 256, (32, model.image_channels, model.image_size, model.image_size), dtype=torch.uint8)
    eager = Trainer(config.replace(**{"runtime.device": "cuda", "runtime.cuda_graphs": "off"}), images, progress=False)
    graphed = Trainer(config.replace(**{"runtime.device": "cuda", "runtime.cuda_graphs": "on"}), images, progress=False)
    for step in range(6):
        latent = eager.spec.sample(8, eager.latent_rng, "cuda")
        real = eager.batches.batch(step)
        torch.testing.assert_close(graphed.train_on(real, latent), eager.train_on(real, latent), rtol=1e-3, atol=1e-4)
    assert graphed._graphed.captured


@cuda
def test_a_replay_refuses_another_batch_size(train_slice):
    trainer = _trainer(train_slice, True)
    for step in range(5):
        trainer.train_on(trainer.batches.batch(step), trainer.spec.sample(32, trainer.latent_rng, "cuda"))
    assert trainer._graphed.captured
    with pytest.raises(ValueError, match="reset"):
        trainer.train_on(trainer.batches.batch(0)[:16], trainer.spec.sample(16, trainer.latent_rng, "cuda"))


@cuda
def test_graphed_bf16_fit_logs_and_resumes(train_slice, tmp_path):
    runtime = {"runtime.device": "cuda", "runtime.precision": "bf16", "runtime.cuda_graphs": "on"}
    config = tiny_config(**{"optim.steps": 12, "optim.batch_size": 32, **runtime})
    first = Trainer(config, train_slice, run_dir=tmp_path)
    assert first.fit() and first._graphed.captured
    snapshot = first.snapshot()
    longer = Trainer(config.replace(**{"optim.steps": 20}), train_slice)
    longer.restore(snapshot)
    assert not longer._graphed.captured  # restored optimiser state: captured again before replaying
    assert longer.fit() and longer.step == 20 and longer._graphed.captured
    for param in longer.generator.parameters():
        assert torch.isfinite(param).all()


@cuda
@pytest.mark.slow
def test_compiled_training_runs_on_cuda(train_slice):
    trainer = Trainer(
        tiny_config(**{"optim.batch_size": 32, "runtime.device": "cuda", "runtime.compile": True}), train_slice
    )
    assert trainer.fit()
    assert all(torch.isfinite(p).all() for p in trainer.generator.parameters())
