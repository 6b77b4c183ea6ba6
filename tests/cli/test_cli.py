"""The CLI end to end on real MNIST: train a few steps, evaluate, sample, traverse, encode, export."""

import csv
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import infogan
import infogan.checkpoint as ckpt
from infogan.cli import main

TINY = [
    "--set",
    "optim.batch_size=16",
    "--set",
    "logging.checkpoint_every=2",
    "--set",
    "logging.image_every=2",
    "--set",
    "logging.log_every=2",
    "--set",
    "logging.tensorboard=false",
    "--device",
    "cpu",
    "--progress",
    "lines",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", "--out", str(out), "--max-steps", "4", "--data-dir", str(data_dir), *TINY]) == 0
    return out


def test_train_writes_a_complete_run_directory(run_dir):
    assert (run_dir / "config.yaml").is_file()
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4]
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "mi_c1", "info_loss_c2", "info_loss_c3", "images_per_s"):
        assert key in lines[-1]
    assert [p.name for p in ckpt.checkpoint_paths(run_dir)] == ["step-0000002.safetensors", "step-0000004.safetensors"]
    names = {p.name for p in (run_dir / "images").iterdir()}
    assert {"samples-0000004.png", "traverse-c1-0000004.png", "traverse-c3-0000004.png"} <= names


def test_evaluate_prints_and_saves_metrics(run_dir, data_dir, capsys):
    assert (
        main(
            [
                "evaluate",
                str(run_dir),
                "--samples",
                "200",
                "--data-dir",
                str(data_dir),
                "--device",
                "cpu",
                "--quality-samples",
                "0",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "c1: accuracy" in printed
    assert "of H(c1) = 2.3026" in printed  # a categorical code's entropy is its information's ceiling
    assert "differential entropy h(c2) = 0.6931, not a ceiling" in printed and "H(c2)" not in printed
    result = json.loads((run_dir / "evaluation.json").read_text())
    c1 = result["clustering"]["c1"]
    assert result["split"] == "test" and result["images"] == 10000
    assert 0.0 < c1["accuracy"] <= 1.0 and np.array(c1["confusion"]).sum() == 10000
    assert set(result["information"]) == {"c1", "c2", "c3"}
    assert result["information"]["c1"]["entropy"] == pytest.approx(np.log(10))


def test_sample_with_fixed_codes(run_dir, tmp_path):
    out = tmp_path / "s.png"
    assert main(["sample", str(run_dir), "--out", str(out), "-n", "12", "--columns", "4", "--code", "c1=3"]) == 0
    width, height = Image.open(out).size
    assert (width, height) == (4 * 30 + 2, 3 * 30 + 2)


def test_traverse_one_code_and_all_codes(run_dir, tmp_path):
    one = tmp_path / "c2.png"
    assert (
        main(["traverse", str(run_dir), "--out", str(one), "--code", "c2", "--steps", "7", "--range", "-1", "1"]) == 0
    )
    assert Image.open(one).size == (7 * 30 + 2, 10 * 30 + 2)  # rows over the 10 values of c1
    every = tmp_path / "all.png"
    assert main(["traverse", str(run_dir), "--out", str(every)]) == 0
    assert Image.open(every).size[1] == 3 * (10 * 30 + 2) + 2 * 8


def test_traverse_one_row_per_code_from_one_draw_labelled_from_the_evaluation(run_dir, tmp_path, capsys):
    evaluation = run_dir / "evaluation.json"
    kept = evaluation.read_bytes() if evaluation.exists() else None  # another test may have evaluated the run
    evaluation.unlink(missing_ok=True)
    out = tmp_path / "rows.png"
    args = ["traverse", str(run_dir), "--out", str(out), "--layout", "rows", "--steps", "5", "--range", "-1", "1"]
    try:
        assert main(args) == 0
        image = np.asarray(Image.open(out).convert("L"))
        assert image.shape[0] == 3 * 32  # c1 (10 values), c2, c3: one 28-pixel row each with its padding
        printed = capsys.readouterr()
        assert "c1: c1\n" in printed.out and "run `infogan evaluate`" in printed.err  # no evaluation: plain names
        margin = image.shape[1] - (10 * 30 + 2)
        assert image[2:30, margin:].std() > 0 and image[34:62, margin:].std() > 0
        mapping = "[3, 1, 2, 0, 4, 5, 6, 7, 8, 9]"
        evaluation.write_text('{"clustering": {"c1": {"mapping": ' + mapping + ', "accuracy": 0.5}}}')
        assert main(args) == 0
        assert "c1: c1 (digit)" in capsys.readouterr().out
    finally:
        evaluation.unlink(missing_ok=True)
        if kept is not None:
            evaluation.write_bytes(kept)
    assert main([*args[:3], str(tmp_path / "rows.gif"), *args[4:]]) == 2  # a still image only


def test_encode_images_and_idx_to_csv_and_npy(run_dir, tmp_path, data_dir, mnist_test):
    png = tmp_path / "digit.png"
    Image.fromarray(mnist_test[0][0, 0].numpy()).save(png)
    idx = tmp_path / "few-idx3-ubyte"
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (5, 28, 28))
    idx.write_bytes(header + mnist_test[0][:5].numpy().tobytes())
    out_csv = tmp_path / "codes.csv"
    assert main(["encode", str(run_dir), str(png), str(idx), "--out", str(out_csv)]) == 0
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == ["source", "c1", "c2", "c3"] and len(rows) == 7
    assert rows[1][1] == rows[2][1]  # the PNG is test image 0, as is the IDX's first image
    out_npy = tmp_path / "codes.npy"
    assert main(["encode", str(run_dir), str(idx), "--out", str(out_npy)]) == 0
    table = np.load(out_npy)
    model = infogan.load(run_dir)
    assert table.shape == (5, 3)
    assert np.array_equal(table[:, 0], model.encode(mnist_test[0][:5])["c1"].numpy())


def test_export_loads_without_the_run(run_dir, tmp_path):
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["latent"]["categorical"] == [10]
    exported, original = infogan.load(out), infogan.load(run_dir)
    assert torch.equal(exported.generate(4, seed=1), original.generate(4, seed=1))
    assert exported.step == 4


def test_a_half_precision_export_is_half_the_size_and_loads_as_float32(run_dir, tmp_path, mnist_test):
    full, half = tmp_path / "full", tmp_path / "half"
    assert main(["export", str(run_dir), "--out", str(full)]) == 0
    assert main(["export", str(run_dir), "--out", str(half), "--half"]) == 0
    full_bytes, half_bytes = ((f / "model.safetensors").stat().st_size for f in (full, half))
    assert half_bytes < 0.55 * full_bytes
    stored = ckpt.load_snapshot(half / "model.safetensors").networks["generator"]
    assert {t.dtype for t in stored.values() if t.is_floating_point()} == {torch.float16}
    original, halved = infogan.load(run_dir), infogan.load(half)
    weights = dict(halved.generator.named_parameters())
    for name, param in original.generator.named_parameters():  # float32 again, each the nearest float16
        assert weights[name].dtype == torch.float32
        assert torch.equal(weights[name], param.detach().half().float())
    images = mnist_test[0][:64]
    agree = (halved.encode(images)["c1"] == original.encode(images)["c1"]).float().mean()
    assert agree >= 0.95
    assert (halved.generate(8, seed=1) - original.generate(8, seed=1)).abs().max() < 0.05


def test_a_half_precision_weight_in_a_checkpoint_is_refused(run_dir, tmp_path):
    """Only an export's float16 weights are widened; a training checkpoint's must match exactly."""
    snapshot = ckpt.load_snapshot(ckpt.latest_checkpoint(run_dir))
    generator = {k: v.half() if v.is_floating_point() else v for k, v in snapshot.networks["generator"].items()}
    bad = tmp_path / "step-half.safetensors"
    ckpt.save_snapshot(bad, dataclasses.replace(snapshot, networks={**snapshot.networks, "generator": generator}))
    with pytest.raises(infogan.InfoGANError, match="stored as torch.float16.*never cast"):
        infogan.load(bad)


def test_a_weight_beyond_float16s_range_is_not_exported_in_half(run_dir, tmp_path):
    model = infogan.load(run_dir)
    with torch.no_grad():
        next(model.generator.parameters())[0].fill_(1e5)
    with pytest.raises(infogan.InfoGANError, match="beyond float16's range"):
        model.export(tmp_path / "half", half=True)
    assert not (tmp_path / "half" / "model.safetensors").exists()


def test_python_api_generate_and_encode(run_dir, mnist_test):
    model = infogan.load(run_dir)
    images = model.generate(6, codes={"c1": 2, "c2": 1.5}, seed=0)
    assert images.shape == (6, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(
        images, model.generate(6, codes={"c1": 2, "c2": 1.5}, generator=torch.Generator().manual_seed(0))
    )
    codes = model.encode(mnist_test[0][:8])
    assert codes["c1"].shape == (8,) and codes["c1"].dtype == torch.int64 and codes["c2"].shape == (8,)
    with pytest.raises(infogan.InfoGANError, match="this model takes"):
        model.encode(torch.zeros(2, 3, 32, 32))


def test_resume_from_the_cli_equals_an_uninterrupted_run(run_dir, tmp_path, data_dir):
    out = tmp_path / "interrupted"
    common = ["--data-dir", str(data_dir), *TINY]
    assert main(["train", "--out", str(out), "--max-steps", "2", *common]) == 0
    assert main(["train", "--out", str(out), "--max-steps", "4", *common]) == 2  # exists: needs --resume
    assert main(["train", "--out", str(out), "--resume", "--max-steps", "4", *common]) == 0
    resumed = ckpt.load_snapshot(ckpt.latest_checkpoint(out))
    straight = ckpt.load_snapshot(ckpt.latest_checkpoint(run_dir))
    assert resumed.step == straight.step == 4
    for net in ("generator", "discriminator"):
        for key, value in straight.networks[net].items():
            assert torch.equal(value, resumed.networks[net][key]), key
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]


def test_resume_refuses_a_changed_network(run_dir, data_dir, capsys):
    code = main(
        ["train", "--out", str(run_dir), "--resume", "--set", "latent.noise_dim=10", "--data-dir", str(data_dir)]
    )
    assert code == 2 and "latent.noise_dim" in capsys.readouterr().err


def test_dry_run_prints_the_resolved_config(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "x"), "--dry-run", "--seed", "7"]) == 0
    assert "seed: 7" in capsys.readouterr().out and not (tmp_path / "x").exists()
    assert main(["train", "--preset", "mnist-fast", "--dry-run"]) == 0  # no run directory needed
    assert "augment_elastic: 2.0" in capsys.readouterr().out
    assert main(["train", "--preset", "mnist-fast"]) == 2  # but training needs one
    assert "needs --out RUN_DIR" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--out", "OUT", "--set", "optim.nothing=1"], "unknown key"),
        (["train", "--out", "OUT", "--data-dir", "NOWHERE", "--set", "data.dataset=fashion-mnist"], "was not found"),
        (["evaluate", "NOWHERE"], "does not exist"),
        (["sample", "RUN", "--out", "OUT.gif"], "must end in .png"),
        (["sample", "RUN", "--out", "OUT.png", "--code", "c9=1"], "unknown code"),
        (["encode", "RUN", "NOWHERE.png", "--out", "OUT.csv"], "does not exist"),
    ],
)
def test_user_mistakes_get_a_message_not_a_traceback(args, message, run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("INFOGAN_DATA_DIR", raising=False)
    monkeypatch.setattr("infogan.data.sources.DEBIAN_ROOT", tmp_path / "debian")
    monkeypatch.setattr("infogan.data.sources.IDX_DATASETS", _offline_datasets())
    replace = {"OUT": str(tmp_path / "out"), "RUN": str(run_dir), "NOWHERE": str(tmp_path / "nowhere")}
    argv = [_substitute(a, replace) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.png").exists()


def _substitute(arg, replace):
    for key, value in replace.items():
        arg = arg.replace(key, value)
    return arg


def _offline_datasets():
    from infogan.data.sources import IDX_DATASETS, IdxDataset

    return {name: IdxDataset(d.name, d.sha256, ("http://127.0.0.1:9/",)) for name, d in IDX_DATASETS.items()}


def test_console_entry_point_reports_errors_cleanly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "infogan", "evaluate", str(tmp_path / "missing")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr


def test_the_command_line_starts_without_the_heavy_libraries():
    # torchvision, SciPy and scikit-learn together added over two seconds to every command's start;
    # they are imported by the functions that use them
    code = "import sys, infogan.cli; print(sorted({m.split('.')[0] for m in sys.modules} & HEAVY))"
    heavy = "HEAVY = {'torchvision', 'scipy', 'sklearn', 'matplotlib'}; "
    result = subprocess.run([sys.executable, "-c", heavy + code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_curves_plot_the_metrics_log(run_dir, tmp_path):
    out = tmp_path / "curves.png"
    assert main(["curves", str(run_dir), "--out", str(out)]) == 0
    assert Image.open(out).size == (1500, 400)
    assert main(["curves", str(tmp_path), "--out", str(tmp_path / "none.png")]) == 2
    assert not (tmp_path / "none.png").exists()


def test_presets_are_listed(capsys):
    assert main(["presets"]) == 0
    listed = capsys.readouterr().out.split()
    assert {"mnist", "mnist-fast", "fashion-mnist", "svhn", "celeba", "faces3d", "chairs3d", "dsprites"} <= set(listed)


def test_train_the_mnist_fast_preset_from_the_cli_and_resume_it(tmp_path, data_dir):
    out = tmp_path / "augmented"
    args = ["train", "--out", str(out), "--preset", "mnist-fast", "--data-dir", str(data_dir), *TINY]
    assert main([*args, "--max-steps", "2"]) == 0
    loss = infogan.load(out).config.loss
    assert (loss.lambda_augmented, loss.augment_stroke, loss.augment_elastic) == (2.0, 0.5, 2.0)
    assert main([*args, "--max-steps", "4", "--resume"]) == 0  # the preset with the same --set matches
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4] and all(np.isfinite(line["d_loss"]) for line in lines)
    assert all(np.isfinite(line["mi_augmented_c1"]) for line in lines)  # the term's own bound is logged
    assert main(["curves", str(out), "--out", str(tmp_path / "curves.png")]) == 0  # and drawn
    assert Image.open(tmp_path / "curves.png").size == (1500, 400)


def test_train_in_bf16_from_the_cli(tmp_path, data_dir):
    out = tmp_path / "bf16"
    args = ["train", "--out", str(out), "--max-steps", "2", "--data-dir", str(data_dir), "--precision", "bf16", *TINY]
    assert main(args) == 0
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 2 and all(isinstance(v, float) for k, v in lines[-1].items() if k != "step")
    assert infogan.load(out).generate(2).dtype == torch.float32


def test_commands_after_training_read_the_runs_data_folder(run_dir, tmp_path, monkeypatch, capsys):
    # issue 30 defect 16: evaluate and select on a run trained with --data-dir find its data
    # without --data-dir (and without INFOGAN_DATA_DIR, a cache or a network); one given still wins
    import shutil

    monkeypatch.delenv("INFOGAN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("infogan.data.sources.DEBIAN_ROOT", tmp_path / "debian")
    monkeypatch.setattr("infogan.data.sources.IDX_DATASETS", _offline_datasets())
    out = tmp_path / "evaluation.json"
    evaluate = ["evaluate", str(run_dir), "--samples", "100", "--limit", "100", "--quality-samples", "0",
                "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main(evaluate) == 0
    assert json.loads(out.read_text())["images"] == 100
    shutil.copytree(run_dir, tmp_path / "copy")
    select = ["select", str(run_dir), str(tmp_path / "copy"), "--method", "agreement", "--images", "100"]
    assert main([*select, "--device", "cpu"]) == 0
    assert "agreement: NMI between the runs' assignments of 100 unlabelled images" in capsys.readouterr().out
    assert main([*evaluate, "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert f"--data-dir: {tmp_path / 'nowhere'}\n" in capsys.readouterr().err
