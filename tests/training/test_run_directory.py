"""The run directory as the whole truth of a run: its lock, its files after faults, the checks on
checkpoints from elsewhere, and the runtime settings a resume takes from it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import infogan
import infogan.checkpoint as ckpt
from helpers import rewrite_checkpoint, tiny_config
from infogan.cli import main
from infogan.errors import InfoGANError
from infogan.fileio import TEMP_PREFIX, read_jsonl
from infogan.provenance import processor_name, source_commit
from infogan.training.loop import NonFiniteError, Trainer
from infogan.training.run_directory import RunDirectory

TINY = [
    "--set", "optim.batch_size=16", "--set", "logging.checkpoint_every=2", "--set", "logging.image_every=100",
    "--set", "logging.log_every=2", "--set", "logging.tensorboard=false", "--progress", "lines",
]  # fmt: skip


def _train(out, *extra) -> list[str]:
    return ["train", "--out", str(out), "--device", "cpu", "--threads", "1", *TINY, *extra]


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("rundir") / "run"
    assert main(_train(out, "--max-steps", "4", "--data-dir", str(data_dir))) == 0
    return out


# -- the lock ---------------------------------------------------------------------------------


def test_a_second_process_on_the_same_run_is_refused_naming_the_first(run, tmp_path, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from infogan.training.run_directory import RunDirectory; "
         f"run = RunDirectory({str(run)!r}); run.lock(); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(_train(run, "--resume", "--max-steps", "6")) == 2
        err = capsys.readouterr().err
        assert f"in use by another infogan process (pid {holder.pid})" in err and f"kill {holder.pid}" in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = RunDirectory(run)  # the holder died holding it: the kernel released it
    lock.lock()
    lock.unlock()
    assert ckpt.checkpoint_paths(run)[-1].name == "step-0000004.safetensors"  # the refused resume trained nothing


def test_the_lock_is_exclusive_within_a_process_and_released_on_unlock(tmp_path):
    first, second = RunDirectory(tmp_path / "run"), RunDirectory(tmp_path / "run")
    first.lock()
    with pytest.raises(InfoGANError, match=f"pid {os.getpid()}"):
        second.lock()
    first.unlock()
    second.lock()
    assert (tmp_path / "run" / ".lock").read_text().strip() == str(os.getpid())
    second.unlock()


def test_a_stale_lock_file_from_a_dead_process_does_not_block(run, data_dir, tmp_path):
    out = tmp_path / "stale"
    out.mkdir()
    (out / ".lock").write_text("999999\n")  # left by a process that died; nobody holds the flock
    assert main(_train(out, "--max-steps", "2", "--data-dir", str(data_dir))) == 0


# -- what killed or failed writes leave ----------------------------------------------------


def test_resume_removes_every_temporary_file_a_killed_write_leaves(run, tmp_path):
    leftovers = [
        run / "checkpoints" / f"{TEMP_PREFIX}step-0000006.safetensors.x1y2.part",
        run / "images" / f"{TEMP_PREFIX}samples-0000006.png.abc.part",
        run / f"{TEMP_PREFIX}config.yaml.q1w2.part",
        run / f"{TEMP_PREFIX}metrics.jsonl.q1w2.part",
    ]
    for path in leftovers:
        path.write_bytes(b"\0" * 100)
    assert main(_train(run, "--resume", "--max-steps", "4")) == 0
    assert not any(path.exists() for path in leftovers)


def test_training_keeps_the_users_own_files_in_its_folder(data_dir, tmp_path):
    out = tmp_path / "proj"
    out.mkdir()
    users = [".tmprc", ".thesis.tex.part", ".tmp-notes.txt", ".video.mp4.part"]
    for name in users:
        (out / name).write_text(name)
    other = out / f"{TEMP_PREFIX}evaluation.json.e5f6.part"  # another command writing there right now
    other.write_text("in flight")
    assert main(_train(out, "--max-steps", "2", "--data-dir", str(data_dir))) == 0
    assert all((out / name).read_text() == name for name in users) and other.exists()


def test_a_cut_off_last_metrics_line_is_dropped_on_resume(run, tmp_path, capsys):
    copy = tmp_path / "torn"
    subprocess.run(["cp", "-r", str(run), str(copy)], check=True)
    with open(copy / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 6, "d_lo')  # what a kill or a full disk leaves
    assert main(_train(copy, "--resume", "--max-steps", "6")) == 0
    assert "dropped the cut-off last line" in capsys.readouterr().err
    records, torn = read_jsonl(copy / "metrics.jsonl")
    assert [r["step"] for r in records] == [2, 4, 6] and not torn


def test_a_damaged_metrics_line_is_named_by_its_number(run, tmp_path, capsys):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (tmp_path / "metrics.jsonl").write_text("\n".join([lines[0], "{oops", lines[1]]) + "\n")
    with pytest.raises(InfoGANError, match="damaged at line 2"):
        read_jsonl(tmp_path / "metrics.jsonl")
    copy = tmp_path / "curves"
    subprocess.run(["cp", "-r", str(run), str(copy)], check=True)
    (copy / "metrics.jsonl").write_text("\n".join([lines[0], "{oops", lines[1]]) + "\n")
    assert main(["curves", str(copy), "--out", str(tmp_path / "c.png")]) == 2
    assert "damaged at line 2" in capsys.readouterr().err


def test_rotation_counts_only_checkpoints_that_load(train_slice, tmp_path):
    config = tiny_config(**{"optim.steps": 6, "logging.keep_checkpoints": 2})
    junk = tmp_path / "checkpoints" / "step-0000999.safetensors"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"junk" * 100)
    Trainer(config, train_slice, run_dir=tmp_path).fit()
    names = [p.name for p in ckpt.checkpoint_paths(tmp_path)]
    assert names == ["step-0000004.safetensors", "step-0000006.safetensors", "step-0000999.safetensors"]


# -- checkpoints whose metadata or tensors are not what this infogan writes --------------------


def _delete(key):
    return lambda meta: meta.pop(key)


def _set(key, value):
    return lambda meta: meta.update({key: value})


def _string_lr(meta):
    meta["optimizers"]["d"]["param_groups"][0]["lr"] = "fast"


@pytest.mark.parametrize(
    ("edit_meta", "edit_tensors", "message"),
    [
        (_delete("config"), None, "no config"),
        (_delete("kind"), None, "kind is None"),
        (_delete("optimizers"), None, "no optimiser state"),
        (_set("step", "ten"), None, "step is 'ten'"),
        (_set("step", 2.5), None, "step is 2.5"),
        (None, lambda t: t.update({"rng.latent": t["rng.latent"].float()}), "random-generator state"),
    ],
)
def test_damaged_metadata_is_refused_and_skipped_on_resume(run, tmp_path, edit_meta, edit_tensors, message, capsys):
    copy = tmp_path / "run"
    subprocess.run(["cp", "-r", str(run), str(copy)], check=True)
    newest = ckpt.checkpoint_paths(copy)[-1]
    rewrite_checkpoint(newest, newest, edit_meta, edit_tensors)
    with pytest.raises(InfoGANError, match=message):
        ckpt.load_snapshot(newest)
    assert main(["sample", str(newest), "--out", str(tmp_path / "s.png"), "--device", "cpu"]) == 2
    assert main(_train(copy, "--resume", "--max-steps", "4")) == 0  # from the older checkpoint
    assert "skipping step-0000004" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit_meta", "edit_tensors", "message"),
    [
        (_string_lr, None, "lr is 'fast'"),
        (None, lambda t: t.update({"optim.d.0.exp_avg": torch.zeros(3)}), r"exp_avg of parameter 0 has shape \(3,\)"),
        (None, lambda t: t.update({k: v.double() for k, v in t.items() if k.startswith("net.")}), "never cast"),
    ],
)
def test_state_that_does_not_fit_the_model_is_refused_before_training(run, tmp_path, edit_meta, edit_tensors, message):
    path = tmp_path / "odd.safetensors"
    rewrite_checkpoint(ckpt.checkpoint_paths(run)[-1], path, edit_meta, edit_tensors)
    snapshot = ckpt.load_snapshot(path)
    trainer = Trainer(snapshot.config, torch.zeros(32, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(InfoGANError, match=message):
        trainer.restore(snapshot)


# -- devices, numbers and non-finite values ----------------------------------------------------


@pytest.mark.parametrize(
    ("device", "message"),
    [("foo", "choose auto, cpu, cuda or cuda:N"), ("mps", "mps backend is not supported"), ("cuda:x", "cuda:N")],
)
def test_a_device_that_cannot_be_used_is_one_clear_error_for_every_command(run, tmp_path, device, message, capsys):
    assert main([*_train(tmp_path / "new", "--max-steps", "2"), "--device", device]) == 2
    assert main(["sample", str(run), "--out", str(tmp_path / "s.png"), "--device", device]) == 2
    err = capsys.readouterr().err
    assert err.count(message) == 2 and "Traceback" not in err
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_cuda_without_a_gpu_says_so_instead_of_calling_checkpoints_damaged(run, tmp_path, capsys):
    assert main(["sample", str(run), "--out", str(tmp_path / "s.png"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "sees no CUDA GPU" in err and "damaged" not in err and "skipping" not in err


def test_floats_in_any_python_spelling_are_accepted(capsys):
    assert main(["train", "--dry-run", "--set", "optim.lr_d=2e-4", "--set", "loss.lambda_codes=[1, 5e-1, 2E-1]"]) == 0
    printed = capsys.readouterr().out
    assert "lr_d: 0.0002" in printed and "- 0.5" in printed


def test_a_billion_laughs_config_is_a_short_error(tmp_path, capsys):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    lines.append("optim:\n  lr_d: *a8")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    assert main(["train", "--dry-run", "--config", str(tmp_path / "bomb.yaml")]) == 2
    err = capsys.readouterr().err
    assert "unknown key a0" in err and len(err) < 1000


def test_non_finite_batch_norm_statistics_are_never_checkpointed(train_slice, tmp_path):
    trainer = Trainer(tiny_config(), train_slice, run_dir=tmp_path)
    trainer.fit()
    norm = next(m for m in trainer.generator.modules() if isinstance(m, torch.nn.BatchNorm1d))
    norm.running_var[0] = float("nan")
    trainer.step += 1
    with pytest.raises(NonFiniteError, match="running_var"):
        trainer.save_checkpoint()


@pytest.mark.parametrize(
    "args",
    [
        ["sample", "RUN", "--out", "OUT", "--code", "c2=nan"],
        ["traverse", "RUN", "--out", "OUT", "--range", "nan", "nan"],
    ],
)
def test_non_finite_codes_are_refused(run, tmp_path, args, capsys):
    argv = [str(run) if a == "RUN" else str(tmp_path / "x.png") if a == "OUT" else a for a in args]
    assert main([*argv, "--device", "cpu"]) == 2
    assert "finite" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


# -- resume takes the run's own settings ------------------------------------------------------


def test_resume_keeps_the_runtime_settings_and_data_folder_and_notes_changes(data_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "bf16"
    assert main(_train(out, "--max-steps", "2", "--precision", "bf16", "--data-dir", str(data_dir))) == 0
    saved = ckpt.load_snapshot(ckpt.checkpoint_paths(out)[-1]).config.runtime
    assert (saved.precision, saved.threads, saved.data_dir) == ("bf16", 1, str((data_dir / "mnist").resolve()))
    monkeypatch.delenv("INFOGAN_DATA_DIR", raising=False)  # the resume finds the data through the run
    resume = ["train", "--resume", "--out", str(out), "--max-steps", "4", "--progress", "lines"]
    assert main(resume) == 0
    snapshot = ckpt.load_snapshot(ckpt.checkpoint_paths(out)[-1])
    assert snapshot.step == 4 and snapshot.config.runtime.precision == "bf16"
    assert "not be bit-identical" not in capsys.readouterr().err
    assert main([*resume[:-3], "6", "--threads", "2", "--progress", "lines"]) == 0
    assert "runtime.threads (1 -> 2)" in capsys.readouterr().err
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["event"] for h in history] == ["start", "resume", "resume"]
    assert history[0]["versions"]["torch"] == torch.__version__
    assert [h["machine"]["threads"] for h in history] == [1, 1, 2]  # each start says where it ran
    assert all(h["machine"]["processor"] == processor_name() and h["machine"]["cpu_count"] for h in history)
    assert history[0]["source"] == source_commit()


def test_the_source_commit_is_this_checkouts_head():
    """Installed from this git checkout (as the README installs it), the run records HEAD."""
    repo = Path(infogan.__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        pytest.skip("infogan is not installed from a git checkout here")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert source_commit()["commit"] == head.stdout.strip()


def test_learning_rates_may_change_on_resume_and_the_change_is_recorded(run, tmp_path, capsys):
    copy = tmp_path / "run"
    subprocess.run(["cp", "-r", str(run), str(copy)], check=True)
    assert main(_train(copy, "--resume", "--max-steps", "6", "--set", "optim.lr_d=1e-4")) == 0
    assert "optim.lr_d changed on resume: 0.0002 -> 0.0001" in capsys.readouterr().err
    snapshot = ckpt.load_snapshot(ckpt.checkpoint_paths(copy)[-1])
    assert snapshot.optimizers["d"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    assert snapshot.config.optim.lr_d == pytest.approx(1e-4)
    last = json.loads((copy / "history.jsonl").read_text().splitlines()[-1])
    assert any(change.startswith("optim.lr_d") for change in last["changes"])
    assert main(_train(copy, "--resume", "--max-steps", "6", "--set", "latent.noise_dim=8")) == 2


def test_the_resume_hint_after_sigterm_works_as_printed(data_dir, tmp_path):
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "INFOGAN_DATA_DIR"}
    command = [sys.executable, "-m", "infogan", *_train(out, "--max-steps", "2000", "--data-dir", str(data_dir))]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not ckpt.checkpoint_paths(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    hint = err.strip().splitlines()[-1].split()
    assert hint[:2] == ["infogan", "train"] and "--data-dir" not in hint
    stopped = ckpt.load_snapshot(ckpt.checkpoint_paths(out)[-1]).step
    resumed = subprocess.run(
        [sys.executable, "-m", "infogan", *hint[1:], "--max-steps", str(stopped + 2)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr


# -- the newcomer's path ------------------------------------------------------------------


def test_export_refuses_to_overwrite_unless_forced(run, tmp_path, capsys):
    folder = tmp_path / "exported"
    assert main(["export", str(run), "--out", str(folder), "--device", "cpu"]) == 0
    before = (folder / "model.safetensors").stat().st_mtime_ns
    assert main(["export", str(run), "--out", str(folder), "--device", "cpu"]) == 2
    assert "holds an export already" in capsys.readouterr().err
    assert (folder / "model.safetensors").stat().st_mtime_ns == before
    assert main(["export", str(run), "--out", str(folder), "--device", "cpu", "--force"]) == 0
    with pytest.raises(InfoGANError, match="holds an export already"):
        infogan.load(run).export(folder)


def test_evaluate_into_a_closed_pipe_ends_quietly(run, data_dir):
    command = f"{sys.executable} -m infogan evaluate {run} --samples 100 --limit 500 --device cpu | head -1"
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env={**os.environ, "INFOGAN_DATA_DIR": str(data_dir)}
    )
    assert result.stdout.strip() and "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
