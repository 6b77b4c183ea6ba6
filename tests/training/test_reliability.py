"""Faults a long run meets: kills, signals, divergence, full disks, damaged files, odd input."""

import errno
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

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
from infogan.training.run_directory import RunDirectory

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
    lower = {"optim.lr_d": 5e-5, "optim.lr_g": 8e-5}  # below the fixed rates the hint once proposed
    config = tiny_config(
        **{"optim.steps": 30, "logging.log_every": 100, "logging.checkpoint_every": checkpoint_every, **lower}
    )
    trainer = Trainer(config, train_slice, run_dir=tmp_path)
    with pytest.raises(NonFiniteError, match=message) as info:
        trainer.fit(callbacks=[_poison_at(5)])
    hint = str(info.value)
    assert _newest_step(tmp_path) == newest  # weights that are NaN are never written
    proposed = {key: float(re.search(rf"{key}=([0-9.e+-]+)", hint).group(1)) for key in lower}
    assert proposed == pytest.approx({key: rate / 2 for key, rate in lower.items()})
    assert "RUN_DIR" not in hint and str(tmp_path) in hint and "last good checkpoint" not in hint
    if not newest:
        assert "No checkpoint was written" in hint and "--resume" not in hint and "rollback" not in hint
        return
    assert f"--resume --out {tmp_path}" in hint and "--on-nonfinite rollback" in hint
    assert f"step-{newest:07d}.safetensors" in hint
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
    with pytest.raises(InfoGANError, match="No space left on device") as info:
        trainer.save_checkpoint()
    assert f"the previous checkpoint {before[-1].name} is intact" in str(info.value)
    assert ckpt.checkpoint_paths(tmp_path) == before
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [p.name for p in before]


def test_a_full_disk_while_logging_is_a_clear_error(train_slice, tmp_path, monkeypatch):
    trainer = Trainer(tiny_config(), train_slice, run_dir=tmp_path)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("infogan.training.monitoring.save_grid", full_disk)
    with pytest.raises(InfoGANError, match="No space left on device.*then start again"):  # no checkpoint yet
        trainer.fit()


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _full_disk_for(monkeypatch, name):
    """Make one writer of the run directory meet a full disk: `name` is the file (or folder) it writes."""
    import builtins

    from infogan.training import run_directory

    def opener(path, *args, **kwargs):
        if Path(path).name == name:
            _no_space()
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(run_directory, "open", opener, raising=False)


def _tensorboard_fails(method):
    def fault(monkeypatch):
        writer = pytest.importorskip("torch.utils.tensorboard").SummaryWriter
        monkeypatch.setattr(writer, method, _no_space)

    return fault


WRITERS = [
    pytest.param("metrics.jsonl", lambda monkeypatch: _full_disk_for(monkeypatch, "metrics.jsonl"), id="metrics"),
    pytest.param("history.jsonl", lambda monkeypatch: _full_disk_for(monkeypatch, "history.jsonl"), id="history"),
    pytest.param("TensorBoard's log", _tensorboard_fails("add_scalar"), id="tensorboard-add"),
    pytest.param("TensorBoard's log", _tensorboard_fails("close"), id="tensorboard-close"),  # in the loop's `finally`
    pytest.param(
        "progress images",
        lambda monkeypatch: monkeypatch.setattr("infogan.training.monitoring.save_grid", _no_space),
        id="images",
    ),
    pytest.param(
        "checkpoint",
        lambda monkeypatch: monkeypatch.setattr("infogan.checkpoint.write_bytes_atomically", _no_space),
        id="checkpoint",
    ),
]


@pytest.mark.parametrize(("what", "fault"), WRITERS)
def test_every_writer_of_the_run_directory_reports_a_full_disk_the_same_way(
    train_slice, tmp_path, monkeypatch, what, fault
):
    fault(monkeypatch)
    trainer = Trainer(tiny_config(**{"logging.tensorboard": True}), train_slice, run_dir=tmp_path)
    with pytest.raises(InfoGANError) as info:
        trainer.fit()
    message = str(info.value)
    assert message.startswith("the disk is full") and what in message and "left on that disk" in message
    assert f"infogan train --out {tmp_path}" in message or f"infogan train --resume --out {tmp_path}" in message
    RunDirectory(tmp_path).lock()  # released


def test_a_failing_close_does_not_hide_the_error_that_stopped_training(train_slice, tmp_path, monkeypatch):
    writer = pytest.importorskip("torch.utils.tensorboard").SummaryWriter

    def broken_close(self):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writer, "close", broken_close)
    monkeypatch.setattr("infogan.training.monitoring.save_grid", _no_space)
    trainer = Trainer(tiny_config(**{"logging.tensorboard": True}), train_slice, run_dir=tmp_path)
    with pytest.raises(InfoGANError, match="the disk is full: cannot write progress images"):
        trainer.fit()
    RunDirectory(tmp_path).lock()


def test_a_full_disk_at_the_first_checkpoint_does_not_claim_a_previous_one(train_slice, tmp_path, monkeypatch):
    monkeypatch.setattr("infogan.checkpoint.write_bytes_atomically", _no_space)
    with pytest.raises(InfoGANError) as info:
        Trainer(tiny_config(), train_slice, run_dir=tmp_path).fit()
    message = str(info.value)
    assert "intact" not in message and "no checkpoint of this run has been written yet" in message
    assert "--resume" not in message and f"infogan train --out {tmp_path}" in message


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
