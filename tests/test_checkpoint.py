import pickle

import pytest
import torch
from safetensors.torch import save_file

import infogan.checkpoint as ckpt
from helpers import tiny_config
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
