import pickle

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import infogan
import infogan.checkpoint as ckpt
from helpers import rewrite_checkpoint, tiny_config
from infogan.cli import main
from infogan.errors import InfoGANError
from infogan.training.loop import Trainer


@pytest.fixture
def trained(train_slice, tmp_path):
    trainer = Trainer(tiny_config(), train_slice, run_dir=tmp_path / "run")
    trainer.fit()
    return trainer


def test_round_trip_restores_everything(trained, train_slice, tmp_path):
    path = ckpt.latest_checkpoint(trained.run_dir)
    assert path.name == "step-0000004.safetensors"
    snap = ckpt.load_snapshot(path)
    assert snap.step == 4 and snap.config == trained.config and snap.kind == "checkpoint"
    fresh = Trainer(trained.config, train_slice)
    fresh.restore(snap)
    for a, b in zip(trained.generator.state_dict().values(), fresh.generator.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(fresh.latent_rng.get_state(), trained.latent_rng.get_state())
    assert torch.equal(fresh.augment_rng.get_state(), trained.augment_rng.get_state())
    for name, opt in trained.optimizers.named().items():
        saved, loaded = opt.state_dict(), fresh.optimizers.named()[name].state_dict()
        assert saved["param_groups"] == loaded["param_groups"]
        for index, state in saved["state"].items():
            for key, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(loaded["state"][index][key]))


def test_only_the_newest_checkpoints_are_kept(train_slice, tmp_path):
    config = tiny_config(**{"optim.steps": 8, "logging.checkpoint_every": 1, "logging.keep_checkpoints": 2})
    Trainer(config, train_slice, run_dir=tmp_path).fit()
    assert [p.name for p in ckpt.checkpoint_paths(tmp_path)] == ["step-0000007.safetensors", "step-0000008.safetensors"]
    assert not list((tmp_path / "checkpoints").glob(".*part"))


def test_truncated_checkpoint_is_refused(trained, tmp_path):
    path = ckpt.latest_checkpoint(trained.run_dir)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(InfoGANError, match="damaged or not a checkpoint"):
        ckpt.load_snapshot(broken)


def test_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(InfoGANError, match="not an infogan checkpoint"):
        ckpt.load_snapshot(path)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_with_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(InfoGANError):
        ckpt.load_snapshot(path)
    assert not marker.exists()


def test_resume_refuses_a_changed_network(trained, train_slice):
    snap = ckpt.load_snapshot(ckpt.latest_checkpoint(trained.run_dir))
    other = Trainer(trained.config.replace(**{"latent.categorical": [5]}), train_slice)
    with pytest.raises(InfoGANError, match=r"latent.categorical"):
        other.restore(snap)
    longer = Trainer(trained.config.replace(**{"optim.steps": 10}), train_slice)
    longer.restore(snap)
    assert longer.step == 4


# -- a checkpoint is checked before anything is built from it ----------------------------------


def _never_build(monkeypatch):
    def build(*args, **kwargs):
        raise AssertionError("networks were built from a checkpoint that should have been refused")

    monkeypatch.setattr("infogan.model.build_networks", build)
    monkeypatch.setattr("infogan.training.state.build_networks", build)


@pytest.mark.parametrize(
    ("key", "value", "limit"),
    [
        ("latent.noise_dim", 10_000_000, 1024),
        ("latent.categorical", [10, 100_000], 1000),
        ("latent.categorical", [2] * 100, 32),
        ("latent.continuous", 5000, 32),
        ("optim.batch_size", 10**8, 8192),
    ],
)
def test_a_config_may_not_ask_for_sizes_beyond_reason(key, value, limit):
    with pytest.raises(InfoGANError, match=rf"{key}.*at most {limit}"):
        tiny_config(**{key: value})


def test_the_conv_width_is_bounded_too():
    with pytest.raises(InfoGANError, match=r"model.width.*at most 256"):
        tiny_config(**{"model.architecture": "conv", "model.image_size": 32, "model.width": 100_000})


def test_a_checkpoint_asking_for_a_huge_network_is_refused_before_any_is_built(trained, tmp_path, monkeypatch, capsys):
    path = tmp_path / "huge.safetensors"
    huge = lambda m: m["config"]["latent"].update(noise_dim=10**7)  # noqa: E731
    rewrite_checkpoint(ckpt.latest_checkpoint(trained.run_dir), path, huge)
    _never_build(monkeypatch)
    assert main(["sample", str(path), "--out", str(tmp_path / "s.png"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "latent.noise_dim" in err and "at most 1024" in err and "Traceback" not in err


def test_tensor_shapes_in_the_header_are_checked_against_the_config_before_building(trained, tmp_path, monkeypatch):
    source = ckpt.latest_checkpoint(trained.run_dir)
    with safe_open(str(source), framework="pt") as handle:
        shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    first = next(key for key, shape in shapes.items() if key.startswith("net.generator.") and 74 in shape)
    shape = shapes[first]
    path = tmp_path / "edited.safetensors"
    # 112 inputs, weights for 74
    rewrite_checkpoint(source, path, lambda m: m["config"]["latent"].update(noise_dim=100))
    _never_build(monkeypatch)
    implied = tuple(112 if size == 74 else size for size in shape)
    with pytest.raises(InfoGANError) as info:
        infogan.load(path)
    message = str(info.value)
    assert first in message and str(shape) in message and str(implied) in message


# -- non-finite values are refused on load ---------------------------------------------------


def _poison(key_start, value):
    def edit(tensors):
        key = next(k for k in tensors if k.startswith(key_start) and tensors[k].is_floating_point())
        tensors[key] = torch.full_like(tensors[key], value)

    return edit


POISONS = [
    ("net.generator.", float("nan")),
    ("net.discriminator.", float("inf")),
    ("optim.d.0.exp_avg", float("nan")),
    ("optim.g.1.exp_avg_sq", -1.0),
    ("optim.d.2.step", -3.0),
]


@pytest.fixture
def two_checkpoints(train_slice, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(), train_slice, run_dir=run).fit()
    assert [p.name for p in ckpt.checkpoint_paths(run)] == ["step-0000002.safetensors", "step-0000004.safetensors"]
    return run


@pytest.mark.parametrize(("key_start", "value"), POISONS)
def test_a_checkpoint_with_values_no_training_writes_is_refused_naming_the_newest_good_one(
    two_checkpoints, key_start, value
):
    run = two_checkpoints
    newest = ckpt.checkpoint_paths(run)[-1]
    rewrite_checkpoint(newest, newest, edit_tensors=_poison(key_start, value))
    with pytest.raises(InfoGANError, match=key_start) as info:
        ckpt.load_snapshot(newest)
    assert "step-0000002.safetensors" in str(info.value)
    with pytest.raises(InfoGANError, match=key_start):
        infogan.load(run)  # the run's newest checkpoint is not skipped for an older one without a word


def test_sample_and_resume_refuse_a_poisoned_checkpoint_and_say_when_none_is_good(
    two_checkpoints, data_dir, tmp_path, capsys
):
    run = two_checkpoints
    for path in ckpt.checkpoint_paths(run):
        rewrite_checkpoint(path, path, edit_tensors=_poison("net.generator.", float("nan")))
    assert main(["sample", str(run), "--out", str(tmp_path / "s.png"), "--device", "cpu"]) == 2
    assert not (tmp_path / "s.png").exists()
    argv = ["train", "--out", str(run), "--resume", "--device", "cpu", "--data-dir", str(data_dir), "--max-steps", "6"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("NaN or infinity in tensor net.generator.") == 2 and err.count("no other checkpoint") == 2
    assert "last good checkpoint" not in err and "Traceback" not in err


def test_tensors_of_a_dtype_no_checkpoint_holds_are_refused_not_a_crash(trained, tmp_path):
    path = tmp_path / "odd.safetensors"
    first = lambda tensors: next(k for k in tensors if k.startswith("net.generator.") and k.endswith("weight"))  # noqa: E731
    rewrite_checkpoint(
        ckpt.latest_checkpoint(trained.run_dir),
        path,
        edit_tensors=lambda t: t.update({first(t): t[first(t)].to(torch.float8_e4m3fn)}),
    )
    with pytest.raises(InfoGANError, match="never cast"):
        infogan.load(path)
