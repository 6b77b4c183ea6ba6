"""Data-parallel training on 2 CPU ranks (gloo): forked workers on a FileStore for the library,
torchrun for the command line. Every worker runs one thread."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

import infogan.checkpoint as ckpt
from helpers import tiny_config
from infogan.config import resolve_config
from infogan.data.batches import InMemoryBatches
from infogan.errors import InfoGANError
from infogan.training.loop import NonFiniteError, Trainer
from infogan.training.ranks import GlobalBatchNorm, World, reports_error, resume_notes
from infogan.training.run import _stop_on_signals

TIMEOUT = 240  # seconds a group of workers may take on a busy machine
# The conv family at its smallest (0.6M weights per network, not the paper's 6.6M), on MNIST
# padded to 32 pixels: a checkpoint takes a fraction of a second to write, not several.
SMALL_NET = {"model.architecture": "conv", "model.image_size": 32, "model.width": 8}
# How closely a 2-rank run with distributed.sync_batchnorm follows a 1-process run with the same
# global batch: the statistics of step 1 (before any update) and of step 2, absolute (the metrics
# are rounded to 6 decimals). Later steps cannot be held to float precision: in a 1-process run,
# scaling every weight by (1 + 1e-7 * noise) moves step 2's statistics by 6e-5 and step 3's by 5e-3
# (Adam's first updates are about lr * sign(gradient), and GAN training amplifies the rest).
FIRST_STEP_TOLERANCE = 1e-5
SECOND_STEP_TOLERANCE = 1e-3


# -- harness: ranks as forked processes ---------------------------------------------------------


def _rank_main(target, rank, size, init, folder, args):
    torch.set_num_threads(1)
    status = 0
    try:
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=size)
        world = World(rank=rank, size=size, local_rank=rank, local_size=size)
        result = target(world, folder, *args)
        (folder / f"result-{rank}.pickle").write_bytes(pickle.dumps(result))
    except BaseException:
        (folder / f"error-{rank}.txt").write_text(traceback.format_exc())
        status = 1
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
        os._exit(status)  # never run the parent's (pytest's) exit handlers in a fork


def _start_ranks(target, folder: Path, *args, size: int = 2):
    folder.mkdir(parents=True, exist_ok=True)
    init = f"file://{folder / 'rendezvous'}"
    context = torch.multiprocessing.get_context("fork")
    processes = [context.Process(target=_rank_main, args=(target, r, size, init, folder, args)) for r in range(size)]
    for process in processes:
        process.start()
    return processes


def _results(processes, folder: Path) -> list:
    deadline = time.monotonic() + TIMEOUT
    for process in processes:
        process.join(max(1.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    errors = [p.read_text() for p in sorted(folder.glob("error-*.txt"))]
    assert not errors, "\n".join(errors)
    assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]
    return [pickle.loads((folder / f"result-{r}.pickle").read_bytes()) for r in range(len(processes))]


def _on_ranks(target, folder: Path, *args, size: int = 2) -> list:
    return _results(_start_ranks(target, folder, *args, size=size), folder)


@pytest.fixture(scope="module")
def images(train_slice) -> torch.Tensor:
    return torch.nn.functional.pad(train_slice, (2, 2, 2, 2))  # 32 x 32, for the conv family


def _config(**overrides):
    return tiny_config(**{"runtime.device": "cpu", **SMALL_NET, **overrides})


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _networks(path: Path) -> dict:
    return ckpt.load_snapshot(path).networks


def _weight_differences(a: dict, b: dict) -> tuple[float, float]:
    """The largest absolute difference between two checkpoints' weights, and the fraction of
    weights that differ by more than 1e-5."""
    diffs = torch.cat([(a[n][k].float() - b[n][k].float()).abs().flatten() for n in a for k in a[n]])
    return diffs.max().item(), (diffs > 1e-5).float().mean().item()


# -- batches and the world, in this process ----------------------------------------------------


def test_ranks_split_the_global_batch_one_process_would_take(train_slice):
    whole = InMemoryBatches(train_slice, 16, 3, (0.0, 1.0))
    shares = [InMemoryBatches(train_slice, 16, 3, (0.0, 1.0), rank=r, world_size=2) for r in range(2)]
    for step in (0, 5, 40):  # 40: a later epoch
        assert torch.equal(torch.cat([s.batch(step) for s in shares]), whole.batch(step))
    latent = tiny_config().latent.sample(16, torch.Generator().manual_seed(0))
    worlds = [World(rank=r, size=2) for r in range(2)]
    assert torch.equal(torch.cat([latent.rows(w.rows(16)).noise for w in worlds]), latent.noise)


@pytest.mark.parametrize(
    ("batch", "message"),
    [(15, "does not split evenly across 2 ranks; use a multiple of 2, e.g. 14 or 16"), (2, "2 or more per rank")],
)
def test_a_global_batch_the_ranks_cannot_split_is_refused(images, batch, message):
    with pytest.raises(InfoGANError, match=message):
        Trainer(_config(**{"optim.batch_size": batch}), images, world=World(rank=0, size=2))


def test_the_world_comes_from_torchruns_environment():
    assert World.from_environment({}) == World()
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    env["TORCHELASTIC_RESTART_COUNT"] = "1"
    assert World.from_environment(env) == World(rank=3, size=4, local_rank=1, local_size=2, restart=1)
    with pytest.raises(InfoGANError, match="do not fit together"):
        World.from_environment({"RANK": "2", "WORLD_SIZE": "2"})


def test_a_resume_on_another_world_size_says_what_changes():
    from infogan.runtime import DistributedConfig

    (note,) = resume_notes(DistributedConfig(world_size=1), DistributedConfig(world_size=2), 16)
    assert "resuming on 2 ranks a run that trained on 1 process" in note
    assert "each rank now takes 8 of every 16" in note and "not be bit-identical" in note


# -- batch norm over the global batch ------------------------------------------------------------


def _global_batch_norm(world, folder, x, upstream):
    torch.manual_seed(0)
    layer = GlobalBatchNorm.like(nn.BatchNorm2d(3))
    rows = world.rows(len(x))
    mine = x[rows].clone().requires_grad_()
    out = layer(mine)
    (out * upstream[rows]).sum().backward()  # the ranks' losses add up to the whole batch's
    weight_grad = world.sum_(layer.weight.grad.clone())
    return out.detach(), mine.grad, weight_grad, layer.running_mean.clone(), layer.running_var.clone()


def test_global_batch_norm_on_two_ranks_equals_batch_norm_on_the_whole_batch(tmp_path):
    x, upstream = torch.randn(8, 3, 4, 4) * 3 + 1, torch.randn(8, 3, 4, 4)
    torch.manual_seed(0)
    whole = nn.BatchNorm2d(3)
    xs = x.clone().requires_grad_()
    out = whole(xs)
    (out * upstream).sum().backward()
    results = _on_ranks(_global_batch_norm, tmp_path, x, upstream)
    for rank, (rank_out, input_grad, weight_grad, mean, var) in enumerate(results):
        rows = slice(4 * rank, 4 * rank + 4)
        torch.testing.assert_close(rank_out, out.detach()[rows], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(input_grad, xs.grad[rows], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(weight_grad, whole.weight.grad, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mean, whole.running_mean)
        torch.testing.assert_close(var, whole.running_var)


# -- training on two ranks -------------------------------------------------------------------------


def _train(world, folder, images, overrides, name):
    trainer = Trainer(_config(**overrides), images, run_dir=folder / name, progress=False, world=world)
    trainer.fit()
    return trainer.step


EQUIVALENCE = {"optim.steps": 2, "logging.log_every": 1, "logging.image_every": 1000, "logging.checkpoint_every": 1}


def _differences(run: Path, reference: Path) -> list[float]:
    """The largest absolute difference of the step statistics, per step."""
    pairs = zip(_metrics(run), _metrics(reference), strict=True)
    return [max(abs(a[k] - b[k]) for k in b if k not in ("step", "images_per_s")) for a, b in pairs]


def test_sync_batchnorm_on_two_ranks_matches_one_process_with_the_same_global_batch(images, tmp_path):
    one = Trainer(_config(**EQUIVALENCE), images, run_dir=tmp_path / "one", progress=False)
    one.fit()
    _on_ranks(_train, tmp_path, images, {**EQUIVALENCE, "distributed.sync_batchnorm": True}, "synced")
    _on_ranks(_train, tmp_path / "own", images, EQUIVALENCE, "per-rank")
    first, second = _differences(tmp_path / "synced", tmp_path / "one")
    assert first <= FIRST_STEP_TOLERANCE and second <= SECOND_STEP_TOLERANCE, (first, second)
    assert _differences(tmp_path / "own" / "per-rank", tmp_path / "one")[0] > 100 * FIRST_STEP_TOLERANCE
    after_one = "checkpoints/step-0000001.safetensors"
    largest, fraction = _weight_differences(
        _networks(tmp_path / "one" / after_one), _networks(tmp_path / "synced" / after_one)
    )
    # Adam's first update is about lr * sign(gradient): where a gradient is near 0 its sign is
    # float noise, and that weight moves by up to 2 lr the other way (lr_g 1e-3 for G's weights,
    # lr_d 2e-4 for D's); the rest agree.
    assert largest <= 2 * 1e-3 + 1e-6 and fraction < 1e-3, (largest, fraction)
    assert yaml_value(tmp_path / "synced" / "config.yaml", "world_size") == 2


def yaml_value(path: Path, key: str):
    import yaml

    return yaml.safe_load(path.read_text())["distributed"][key]


def _train_then_resume(world, folder, images):
    straight = Trainer(_config(), images, run_dir=folder / "straight", progress=False, world=world)
    straight.fit()
    resumed = Trainer(_config(), images, run_dir=folder / "resumed", progress=False, world=world)
    resumed.restore(ckpt.load_snapshot(folder / "straight" / "checkpoints" / "step-0000002.safetensors"))
    resumed.fit()
    return resumed.step


def test_two_ranks_train_log_checkpoint_and_resume_bit_identically(images, tmp_path):
    assert _on_ranks(_train_then_resume, tmp_path, images) == [4, 4]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert [r["step"] for r in _metrics(straight)] == [2, 4]  # written once, by rank 0
    history = [json.loads(line) for line in (straight / "history.jsonl").read_text().splitlines()]
    assert [(h["event"], h["world_size"]) for h in history] == [("start", 2)]
    assert sorted(p.name for p in (straight / "images").glob("samples-*.png")) == [
        "samples-0000002.png",
        "samples-0000004.png",
    ]
    a = ckpt.load_snapshot(straight / "checkpoints" / "step-0000004.safetensors")
    b = ckpt.load_snapshot(resumed / "checkpoints" / "step-0000004.safetensors")
    assert a.config.distributed.world_size == 2
    for net in a.networks:
        for key, value in a.networks[net].items():
            assert torch.equal(value, b.networks[net][key]), f"{net}.{key}"
    for name, state in a.optimizers.items():
        for index, entries in state["state"].items():
            for key, value in entries.items():
                assert torch.equal(value, b.optimizers[name]["state"][index][key]), f"{name} {index} {key}"


def _resume_from(world, folder, images, checkpoint):
    snapshot = ckpt.load_snapshot(checkpoint)
    trainer = Trainer(_config(**{"optim.steps": 6}), images, run_dir=folder / "grown", progress=False, world=world)
    log = io.StringIO()
    with contextlib.redirect_stderr(log):
        trainer.restore(snapshot)
    same = all(
        torch.equal(value, trainer.state.networks()[net].state_dict()[key])
        for net, state in snapshot.networks.items()
        for key, value in state.items()
    )
    moments = trainer.optimizers.d.state_dict()["state"][0]["exp_avg"]
    same = same and torch.equal(moments, snapshot.optimizers["d"]["state"][0]["exp_avg"])
    trainer.fit()
    return same, log.getvalue()


def test_a_run_resumes_on_another_world_size(images, tmp_path):
    single = Trainer(_config(), images, run_dir=tmp_path / "single", progress=False)
    single.fit()
    checkpoint = tmp_path / "single" / "checkpoints" / "step-0000004.safetensors"
    results = _on_ranks(_resume_from, tmp_path, images, checkpoint)
    assert [same for same, _ in results] == [True, True]  # weights and optimiser state as saved
    assert "resuming on 2 ranks a run that trained on 1 process" in results[0][1]
    assert results[1][1] == ""  # one message, from rank 0
    history = [json.loads(line) for line in (tmp_path / "grown" / "history.jsonl").read_text().splitlines()]
    assert history[0]["world_size"] == 2 and "distributed.world_size (1 -> 2)" in history[0]["changes"]
    back = Trainer(_config(**{"optim.steps": 8}), images, run_dir=tmp_path / "grown", progress=False)
    back.restore(ckpt.load_snapshot(tmp_path / "grown" / "checkpoints" / "step-0000006.safetensors"))
    back.fit()
    assert back.step == 8 and back.config.distributed.world_size == 1


def _every_kind_of_step(world, folder, images, preset, overrides):
    base = {"runtime.device": "cpu", "optim.batch_size": 16, "optim.steps": 3, "logging.tensorboard": False}
    base |= {"logging.log_every": 1, "logging.image_every": 1000, "logging.checkpoint_every": 3}
    config = resolve_config(preset).replace(**base, **overrides)
    size = config.model.image_size
    pad = (size - images.shape[-1]) // 2
    images = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    trainer = Trainer(config, images, run_dir=folder / "run", progress=False, world=world)
    trainer.fit()  # its checkpoint checks that the ranks' weights are the same
    return trainer.step


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [
        (
            "mnist",
            {**SMALL_NET, "loss.info_update": "generator_q", "loss.lambda_augmented": 1.0, "loss.augment_elastic": 1.0}
            | {"runtime.precision": "bf16", "distributed.sync_batchnorm": True},
        ),
        ("mnist", {**SMALL_NET, "loss.info_update": "joint", "optim.generator_steps": 2}),
        ("dsprites-cr", {"contrastive.start_step": 1, "distributed.sync_batchnorm": True}),
    ],
    ids=["generator_q-augmented-bf16-sync", "joint-two-generator-steps", "contrastive-spectral-norm-sync"],
)
def test_every_kind_of_step_trains_on_two_ranks_in_step(train_slice, tmp_path, preset, overrides):
    assert _on_ranks(_every_kind_of_step, tmp_path, train_slice, preset, overrides) == [3, 3]
    records = _metrics(tmp_path / "run")
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(math.isfinite(v) for r in records for v in r.values())
    if preset == "dsprites-cr":
        assert "cr_loss" in records[-1] and "cr_loss" not in records[0]


def _poisoned(world, folder, images):
    def poison(trainer):
        if trainer.step == 2 and world.rank == 1:
            with torch.no_grad():
                next(trainer.discriminator.parameters()).fill_(float("nan"))

    config = _config(**{"optim.steps": 12, "logging.log_every": 4, "logging.checkpoint_every": 100})
    trainer = Trainer(config, images, run_dir=folder / "nan", progress=False, world=world)
    try:
        trainer.fit(callbacks=[poison])
    except NonFiniteError as exc:
        return trainer.step, str(exc), reports_error(exc, world)
    return trainer.step, None, None


def test_a_nan_on_one_rank_stops_every_rank_at_the_same_step_with_one_message(images, tmp_path):
    (step0, message0, reports0), (step1, message1, reports1) = _on_ranks(_poisoned, tmp_path, images)
    assert step0 == step1 == 4 and message0 == message1
    assert "training diverged" in message0 and "by step 4" in message0
    assert (reports0, reports1) == (True, False)


def _stoppable(world, folder, images):
    config = _config(**{"optim.steps": 200, "logging.log_every": 1, "logging.checkpoint_every": 2})
    trainer = Trainer(config, images, run_dir=folder / "stop", progress=False, world=world)
    with _stop_on_signals(trainer, world), contextlib.redirect_stderr(io.StringIO()):
        completed = trainer.fit()
    return completed, trainer.step


def test_sigterm_to_one_rank_stops_both_after_the_same_step_with_one_checkpoint(images, tmp_path):
    processes = _start_ranks(_stoppable, tmp_path, images)
    run = tmp_path / "stop"
    deadline = time.monotonic() + TIMEOUT
    while not ckpt.checkpoint_paths(run) and time.monotonic() < deadline and processes[1].is_alive():
        time.sleep(0.05)
    os.kill(processes[1].pid, signal.SIGTERM)  # rank 1 alone: rank 0 learns of it at the next step
    (done0, step0), (done1, step1) = _results(processes, tmp_path)
    assert not done0 and not done1 and step0 == step1 < 200
    newest = ckpt.checkpoint_paths(run)[-1]
    assert newest.name == f"step-{step0:07d}.safetensors" and ckpt.load_snapshot(newest).step == step0


# -- the command line under torchrun -------------------------------------------------------------

CLI_SMALL = [
    "--device", "cpu", "--threads", "1", "--progress", "lines", "--set", "optim.batch_size=16",
    "--set", "logging.log_every=1", "--set", "logging.checkpoint_every=2", "--set", "logging.image_every=1000",
    "--set", "logging.tensorboard=false", "--set", "data.dataset=folder",
    *(f"--set={key}={value}" for key, value in SMALL_NET.items()),
]  # fmt: skip


@pytest.fixture(scope="module")
def digits(tmp_path_factory, train_slice) -> Path:
    """256 real MNIST digits as PNG files: the folder data set reads them in a moment, where
    each rank would otherwise read all 60,000 training images."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("digits")
    for index, image in enumerate(train_slice[:256]):
        Image.fromarray(image[0].numpy()).save(folder / f"{index:03d}.png")
    return folder


def _torchrun(out: Path, digits: Path, *extra: str, nproc: int = 2, restarts: int = 0) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--standalone",
        "--max-restarts", str(restarts), "-m", "infogan", "train", "--out", str(out), *CLI_SMALL,
        "--set", f"data.path={digits}", *extra,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def test_torchrun_trains_two_ranks_from_the_command_line(tmp_path, digits):
    out = tmp_path / "run"
    done = subprocess.run(
        _torchrun(out, digits, "--max-steps", "4"), capture_output=True, text=True, env=_env(), timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 4 steps") == 1  # rank 0 alone reports
    assert [r["step"] for r in _metrics(out)] == [1, 2, 3, 4]
    assert [p.name for p in ckpt.checkpoint_paths(out)] == ["step-0000002.safetensors", "step-0000004.safetensors"]
    assert ckpt.load_snapshot(ckpt.checkpoint_paths(out)[-1]).config.distributed.world_size == 2


@pytest.mark.slow
def test_torchrun_refuses_a_batch_the_ranks_cannot_split_with_one_message(tmp_path, digits):
    out = tmp_path / "run"
    done = subprocess.run(
        _torchrun(out, digits, "--set", "optim.batch_size=15"),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=TIMEOUT,
    )
    assert done.returncode != 0
    assert done.stderr.count("does not split evenly across 2 ranks") == 1
    assert not ckpt.checkpoint_paths(out)


def _wait_for_checkpoint(process, out: Path, beyond: int = 0) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        paths = ckpt.checkpoint_paths(out)
        if paths and int(paths[-1].stem.split("-")[1]) > beyond:
            return
        time.sleep(0.1)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_then_the_run_resumes_on_one_process(tmp_path, digits):
    out = tmp_path / "run"
    launcher = subprocess.Popen(
        _torchrun(out, digits, "--max-steps", "400"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(),
    )  # fmt: skip
    _wait_for_checkpoint(launcher, out)
    launcher.send_signal(signal.SIGTERM)
    _, err = launcher.communicate(timeout=TIMEOUT)
    assert err.count("stopped at step") == 1, err[-3000:]
    stopped = ckpt.load_snapshot(ckpt.checkpoint_paths(out)[-1]).step
    assert 0 < stopped < 400 and f"stopped at step {stopped};" in err
    resumed = subprocess.run(
        [sys.executable, "-m", "infogan", "train", "--resume", "--out", str(out), "--max-steps", str(stopped + 2)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=TIMEOUT,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming on 1 process a run that trained on 2 ranks" in resumed.stderr


def _children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


@pytest.mark.slow
def test_a_rank_killed_with_sigkill_is_restarted_by_torchrun_and_training_continues(tmp_path, digits):
    out = tmp_path / "run"
    launcher = subprocess.Popen(
        _torchrun(out, digits, "--max-steps", "12", restarts=1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=_env(),
    )  # fmt: skip
    _wait_for_checkpoint(launcher, out)
    writer = int((out / ".lock").read_text().strip())
    victim = next(pid for pid in _children(launcher.pid) if pid != writer)  # rank 1
    os.kill(victim, signal.SIGKILL)
    stdout, err = launcher.communicate(timeout=TIMEOUT)
    assert launcher.returncode == 0, err[-3000:]
    assert "torchrun restart 1: resuming" in err and stdout.count("trained 12 steps") == 1
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["event"] for h in history] == ["start", "resume"]
    assert ckpt.load_snapshot(ckpt.checkpoint_paths(out)[-1]).step == 12
