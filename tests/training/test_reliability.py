"""Faults a long run meets: kills, signals, divergence, full disks, damaged files, odd input."""

import errno
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import infogan
import infogan.checkpoint as ckpt
from helpers import tiny_config
from infogan.config import read_config_file
from infogan.data import parse_idx
from infogan.errors import InfoGANError
from infogan.training.loop import NonFiniteError, Trainer

STEPS = 10
SMALL = [
    "--set", "optim.batch_size=16", "--set", "logging.checkpoint_every=2", "--set", "logging.keep_checkpoints=2",
    "--set", "logging.image_every=1000", "--set", "logging.log_every=1", "--set", "logging.tensorboard=false",
]  # fmt: skip


def _train(out, data_dir, *extra):
    return [
        sys.executable, "-m", "infogan", "train", "--out", str(out), "--max-steps", str(STEPS), "--data-dir",
        str(data_dir), "--threads", "1", "--device", "cpu", "--progress", "lines", *SMALL, *extra,
    ]  # fmt: skip


def _newest_step(run_dir) -> int:
    paths = ckpt.checkpoint_paths(run_dir)
    return int(paths[-1].stem.split("-")[1]) if paths else 0


def _final_networks(run_dir):
    snapshot = ckpt.load_snapshot(ckpt.checkpoint_paths(run_dir)[-1])
    assert snapshot.step == STEPS
    return snapshot.networks


def _assert_same_networks(a, b):
    for net in ("generator", "discriminator"):
        for key, value in a[net].items():
            assert torch.equal(value, b[net][key]), f"{net}.{key}"


@pytest.fixture(scope="module")
def straight(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("straight") / "run"
    subprocess.run(_train(out, data_dir), check=True, capture_output=True)
    return _final_networks(out)


def _wait_for_progress(process, run_dir, beyond: int, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _newest_step(run_dir) > beyond:
            return True
        time.sleep(0.02)
    raise AssertionError("training made no progress")


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(straight, data_dir, tmp_path):
    out = tmp_path / "run"
    rng = random.Random(0)
    kills = 0
    for _ in range(3):
        before = _newest_step(out)
        process = subprocess.Popen(
            _train(out, data_dir, *(["--resume"] if before else [])),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _wait_for_progress(process, out, before):
            time.sleep(rng.uniform(0.0, 0.6))
            process.kill()
            kills += process.wait() == -signal.SIGKILL
        else:
            process.wait()
    assert kills >= 2  # most kills landed mid-run
    if _newest_step(out) < STEPS:
        subprocess.run(_train(out, data_dir, "--resume"), check=True, capture_output=True)
    _assert_same_networks(straight, _final_networks(out))


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(straight, data_dir, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(_train(out, data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_progress(process, out, 0)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert process.returncode == 130
    assert "infogan train --resume --out" in err and "Traceback" not in err
    stopped_at = _newest_step(out)
    assert 0 < stopped_at < STEPS
    subprocess.run(_train(out, data_dir, "--resume"), check=True, capture_output=True)
    _assert_same_networks(straight, _final_networks(out))


def _poison_at(step):
    def callback(trainer):
        if trainer.step == step and not getattr(trainer, "_poisoned", False):
            trainer._poisoned = True
            with torch.no_grad():
                next(trainer.generator.parameters()).fill_(float("nan"))

    return callback


@pytest.mark.parametrize(
    ("checkpoint_every", "message", "newest"),
    [
        (4, r"generator weight body.0.weight became NaN .* by step 8", 4),  # caught when saving step 8
        (100, r"d_loss, g_loss.* by step 10", 0),  # caught by the loss check every 10 steps
    ],
)
def test_divergence_stops_naming_step_and_quantity_and_keeps_good_checkpoints(
    train_slice, tmp_path, checkpoint_every, message, newest
):
    config = tiny_config(**{"optim.steps": 30, "logging.log_every": 100, "logging.checkpoint_every": checkpoint_every})
    trainer = Trainer(config, train_slice, run_dir=tmp_path)
    with pytest.raises(NonFiniteError, match=message) as info:
        trainer.fit(callbacks=[_poison_at(5)])
    assert "--on-nonfinite rollback" in str(info.value)
    assert _newest_step(tmp_path) == newest  # weights that are NaN are never written
    if not newest:
        return
    snapshot = ckpt.load_snapshot(ckpt.checkpoint_paths(tmp_path)[-1])
    assert all(torch.isfinite(v).all() for v in snapshot.networks["generator"].values())


def test_rollback_returns_to_the_last_checkpoint_with_lower_learning_rates(train_slice, tmp_path):
    config = tiny_config(
        **{
            "optim.steps": 16,
            "logging.log_every": 100,
            "logging.checkpoint_every": 4,
            "runtime.on_nonfinite": "rollback",
        }
    )
    trainer = Trainer(config, train_slice, run_dir=tmp_path)
    assert trainer.fit(callbacks=[_poison_at(5)])
    assert trainer.step == 16 and trainer.rollbacks == 1
    assert trainer.optimizers.d.param_groups[0]["lr"] == pytest.approx(config.optim.lr_d / 2)
    assert all(torch.isfinite(p).all() for p in trainer.generator.parameters())


def _safetensors_fails(monkeypatch):
    from safetensors import SafetensorError

    def fail(tensors, metadata=None):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(ckpt, "save", fail)


def _disk_fills_while_writing(monkeypatch):
    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("infogan.fileio.os.fsync", full_disk)  # the temporary file is written, then the disk fills


@pytest.mark.parametrize("fault", [_safetensors_fails, _disk_fills_while_writing])
def test_a_full_disk_leaves_the_previous_checkpoint_and_no_partial_file(train_slice, tmp_path, monkeypatch, fault):
    trainer = Trainer(tiny_config(), train_slice, run_dir=tmp_path)
    trainer.fit()
    before = ckpt.checkpoint_paths(tmp_path)
    fault(monkeypatch)
    trainer.step += 1
    with pytest.raises(InfoGANError, match="No space left on device"):
        trainer.save_checkpoint()
    assert ckpt.checkpoint_paths(tmp_path) == before
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [p.name for p in before]


def test_a_full_disk_while_logging_is_a_clear_error(train_slice, tmp_path, monkeypatch):
    trainer = Trainer(tiny_config(), train_slice, run_dir=tmp_path)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("infogan.training.monitoring.save_grid", full_disk)
    with pytest.raises(InfoGANError, match="No space left on device.*--resume"):
        trainer.fit()


def test_weights_that_do_not_match_their_config_are_refused(train_slice, tmp_path):
    trainer = Trainer(tiny_config(), train_slice, run_dir=tmp_path)
    snapshot = trainer.snapshot()
    other = Trainer(tiny_config(**{"latent.categorical": [4]}), train_slice).snapshot()
    snapshot.networks = other.networks  # the config says Cat(10), the weights are for Cat(4)
    path = tmp_path / "mixed.safetensors"
    ckpt.save_snapshot(path, snapshot)
    with pytest.raises(InfoGANError, match="do not fit|the model needs"):
        infogan.load(path)
    with pytest.raises(InfoGANError, match="do not fit|the model needs"):
        Trainer(tiny_config(), train_slice).restore(ckpt.load_snapshot(path))


def test_resume_skips_a_damaged_newest_checkpoint(train_slice, tmp_path, capsys):
    trainer = Trainer(tiny_config(), train_slice, run_dir=tmp_path)
    trainer.fit()
    newest = ckpt.checkpoint_paths(tmp_path)[-1]
    newest.write_bytes(newest.read_bytes()[:4096])
    snapshot, path = ckpt.load_latest_valid(tmp_path)
    assert snapshot.step == 2 and path.name == "step-0000002.safetensors"
    assert "skipping step-0000004" in capsys.readouterr().err


def test_unwritable_output_is_a_clear_error(data_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = subprocess.run(_train(blocker / "run", data_dir), capture_output=True, text=True)
    assert result.returncode == 2
    assert "cannot write to the run directory" in result.stderr and "Traceback" not in result.stderr


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_idx_reader_accepts_or_explains_any_bytes(data):
    try:
        array = parse_idx(data)
    except InfoGANError:
        return
    assert array.nbytes == len(data) - 4 - 4 * data[3]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_idx_reader_on_a_valid_header_with_any_body(body):
    header = bytes([0, 0, 8, 2]) + (3).to_bytes(4, "big") + (4).to_bytes(4, "big")
    try:
        array = parse_idx(header + body)
    except InfoGANError as exc:
        assert len(body) != 12 and ("truncated" in str(exc) or "longer" in str(exc))
    else:
        assert array.shape == (3, 4)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.sampled_from([".yaml", ".toml", ".json"]))
def test_config_reader_accepts_or_explains_any_text(tmp_path_factory, text, suffix):
    path = tmp_path_factory.mktemp("cfg") / f"config{suffix}"
    path.write_text(text, encoding="utf-8")
    try:
        data = read_config_file(path)
    except InfoGANError:
        return
    assert isinstance(data, dict)
