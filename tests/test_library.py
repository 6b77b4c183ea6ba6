"""The library's one-call operations: infogan.train, infogan.evaluate_run, infogan.select."""

import json
import shutil
from pathlib import Path

import pytest
import torch

import infogan
import infogan.checkpoint as ckpt
from infogan.errors import InfoGANError

LEGACY_RUN = Path(__file__).parent / "fixtures" / "run-v0.1-e306036"
SMALL = [
    "optim.batch_size=16", "logging.checkpoint_every=10", "logging.keep_checkpoints=1", "logging.image_every=1000",
    "logging.log_every=5", "logging.tensorboard=false",
]  # fmt: skip


def _train(out, steps, images, runtime=None, **options):
    return infogan.train("mnist", out=out, overrides=[*SMALL, f"optim.steps={steps}"], images=images,
                         runtime=runtime or {"device": "cpu", "threads": 1}, progress="none", **options)  # fmt: skip


def _networks(run_dir):
    return ckpt.load_snapshot(ckpt.checkpoint_paths(run_dir)[-1]).networks


def test_train_then_resume_from_python_equals_one_uninterrupted_run(train_slice, tmp_path):
    first = _train(tmp_path / "split", 20, train_slice)
    assert (first.completed, first.step, first.run_dir) == (True, 20, tmp_path / "split")
    assert first.model.generate(4).shape == (4, 1, 28, 28)
    second = _train(tmp_path / "split", 30, train_slice, resume=True)
    assert (second.completed, second.step) == (True, 30)
    straight = _train(tmp_path / "straight", 30, train_slice)
    a, b = _networks(tmp_path / "split"), _networks(tmp_path / "straight")
    for net in ("generator", "discriminator"):
        for key, value in a[net].items():
            assert torch.equal(value, b[net][key]), f"{net}.{key}"
    for name in ("config.yaml", "metrics.jsonl", "history.jsonl"):
        assert (tmp_path / "split" / name).is_file()
    history = (tmp_path / "split" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in history] == ["start", "resume"]
    assert straight.model.step == 30


def test_resume_choices_auto_true_and_false(train_slice, tmp_path):
    with pytest.raises(InfoGANError, match="no checkpoint|no valid checkpoint|holds no"):
        _train(tmp_path / "run", 5, train_slice, resume=True)
    assert not (tmp_path / "run" / "checkpoints").exists()
    _train(tmp_path / "run", 5, train_slice, resume="auto")  # nothing there yet: a new run
    with pytest.raises(InfoGANError, match="already holds a run; pass --resume"):
        _train(tmp_path / "run", 5, train_slice, resume=False)
    again = _train(tmp_path / "run", 8, train_slice)  # the default, auto: resumes
    assert again.step == 8
    with pytest.raises(InfoGANError, match="cannot resume: the config differs"):
        infogan.train("mnist", out=tmp_path / "run", overrides=[*SMALL, "optim.steps=9", "loss.lambda_continuous=0.5"],
                      images=train_slice, progress="none")  # fmt: skip
    assert _train(tmp_path / "run", 9, train_slice).step == 9  # the refusal left the run unlocked


def test_progress_function_is_called_every_step_and_none_prints_nothing(train_slice, tmp_path, capsys):
    steps = []
    infogan.train(infogan.resolve_config("mnist", None, SMALL), overrides=["optim.steps=4"], images=train_slice,
                  progress=lambda trainer: steps.append(trainer.step))  # fmt: skip
    assert steps == [1, 2, 3, 4]
    _train(tmp_path / "quiet", 4, train_slice)
    assert capsys.readouterr().out == ""


def test_bad_arguments_are_clear_errors(train_slice, tmp_path):
    with pytest.raises(InfoGANError, match="not a runtime setting"):
        _train(tmp_path / "r", 2, train_slice, runtime={"devise": "cpu"})
    with pytest.raises(InfoGANError, match="mnist-huge"):
        infogan.train("mnist-huge", images=train_slice)
    with pytest.raises(InfoGANError, match="progress 'loud'"):
        infogan.train("mnist", overrides=["optim.steps=1"], images=train_slice, progress="loud")
    with pytest.raises(InfoGANError, match="KEY=VALUE"):
        infogan.train("mnist", overrides="optim.steps=1", images=train_slice)
    with pytest.raises(InfoGANError, match="recorded from the launcher"):
        infogan.train("mnist", out=tmp_path / "r", overrides={"distributed.world_size": 3}, images=train_slice)
    assert not (tmp_path / "r").exists()


def test_a_config_file_and_a_dry_run(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("optim:\n  steps: 7\n")
    result = infogan.train(path, preset="fashion-mnist", dry_run=True)
    assert (result.model, result.config.optim.steps, result.config.data.dataset) == (None, 7, "fashion-mnist")


def test_evaluate_run_writes_the_report_beside_the_run(train_slice, data_dir, tmp_path):
    run = _train(tmp_path / "run", 4, train_slice).run_dir
    report = infogan.evaluate_run(run, samples=200, limit=300, quality_samples=0, data_dir=data_dir, device="cpu")
    assert json.loads((run / "evaluation.json").read_text()) == report
    assert report["images"] == 300 and set(report["clustering"]) == {"c1"}
    assert report["quality"]["note"] == "skipped (--quality-samples 0)"
    model_only = infogan.evaluate_run(infogan.load(run), samples=200, limit=100, quality_samples=0, data_dir=data_dir)
    assert model_only["images"] == 100  # a model object: nothing written
    assert json.loads((run / "evaluation.json").read_text())["images"] == 300


def test_select_by_agreement_ranks_two_runs_and_writes_json(train_slice, data_dir, tmp_path):
    runs = [_train(tmp_path / "run0", 4, train_slice).run_dir]
    shutil.copytree(runs[0], tmp_path / "copy")
    out = tmp_path / "select.json"
    result = infogan.select([runs[0], tmp_path / "copy"], "agreement", images=200, data_dir=data_dir, out=out,
                            device="cpu", log=lambda line: None)  # fmt: skip
    assert json.loads(out.read_text()) == result
    assert result["similarity"][0][1] == pytest.approx(1.0)  # a run agrees with its copy completely
    with pytest.raises(InfoGANError, match="two or more runs"):
        infogan.select([runs[0]])
    with pytest.raises(InfoGANError, match="method 'vote'"):
        infogan.select([runs[0], tmp_path / "copy"], "vote")


def test_a_run_directory_written_before_the_library_layout_loads_and_resumes(tmp_path):
    run = tmp_path / "old"
    shutil.copytree(LEGACY_RUN, run)
    model = infogan.load(run)
    assert model.step == 4 and model.generate(2).shape == (2, 1, 64, 64)
    images = torch.randint(0, 256, (64, 1, 64, 64), dtype=torch.uint8)
    result = infogan.train(out=run, overrides=["optim.steps=6"], resume=True, images=images, progress="none")
    assert (result.step, result.completed) == (6, True)
    assert ckpt.load_snapshot(ckpt.checkpoint_paths(run)[-1]).step == 6


def _offline(monkeypatch, tmp_path):
    """No data but where a test points: no INFOGAN_DATA_DIR, an empty cache, no system folder,
    and no download."""
    from infogan.data import sources

    def no_download(dataset, filename, *args):
        raise InfoGANError(f"{filename} would have been downloaded")

    monkeypatch.delenv("INFOGAN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "DEBIAN_ROOT", tmp_path / "debian")
    monkeypatch.setattr(sources, "download_file", no_download)


def test_the_folder_the_data_was_read_from_is_recorded_and_used_on_resume(data_dir, tmp_path, monkeypatch):
    # issue 30 defect 14: a run started with INFOGAN_DATA_DIR records the folder the data was read
    # from (and its files' checksums); a resume without the variable reads from it; a data_dir
    # given to the resume still wins
    from infogan.data import sources

    _offline(monkeypatch, tmp_path)
    monkeypatch.setenv("INFOGAN_DATA_DIR", str(data_dir))
    run, folder = tmp_path / "run", (data_dir / "mnist").resolve()
    train = lambda steps, **options: infogan.train(  # noqa: E731
        "mnist", out=run, overrides=[*SMALL, f"optim.steps={steps}"], runtime={"device": "cpu", "threads": 1},
        progress="none", **options)  # fmt: skip
    train(2)
    assert f"data_dir: {folder}\n" in (run / "config.yaml").read_text()
    assert infogan.load(run).config.runtime.data_dir == str(folder)
    record = json.loads((run / "data.json").read_text())
    assert (record["dataset"], record["folder"], record["step"]) == ("mnist", str(folder), 0)
    known = sources.IDX_DATASETS["mnist"].sha256
    assert [(f["path"], f["uncompressed_sha256"]) for f in record["files"]] == [
        (str(folder / f"{name}.gz"), known[name]) for name in sources.SPLIT_FILES["train"]
    ]
    assert record["files"][0]["bytes"] == (folder / "train-images-idx3-ubyte.gz").stat().st_size
    monkeypatch.delenv("INFOGAN_DATA_DIR")
    assert train(4).step == 4
    other = tmp_path / "other"
    other.mkdir()
    for name in sources.SPLIT_FILES["train"]:
        (other / f"{name}.gz").symlink_to(folder / f"{name}.gz")
    assert train(6, data_dir=other).step == 6
    assert infogan.load(run).config.runtime.data_dir == str(other.resolve())
    assert json.loads((run / "data.json").read_text())["folder"] == str(other.resolve())


def test_evaluate_run_and_select_read_the_runs_data_folder(data_dir, tmp_path, monkeypatch):
    # issue 30 defect 16, from Python: no data_dir given, the run's recorded folder is searched
    run = infogan.train("mnist", out=tmp_path / "run", overrides=[*SMALL, "optim.steps=2"], data_dir=data_dir,
                        runtime={"device": "cpu", "threads": 1}, progress="none").run_dir  # fmt: skip
    shutil.copytree(run, tmp_path / "copy")
    _offline(monkeypatch, tmp_path)
    report = infogan.evaluate_run(run, samples=100, limit=100, quality_samples=0, device="cpu")
    assert report["images"] == 100
    assert infogan.evaluate_run(infogan.load(run), samples=100, limit=50, quality_samples=0)["images"] == 50
    result = infogan.select([run, tmp_path / "copy"], "agreement", images=100, device="cpu", log=lambda line: None)
    assert result["images"] == 100
    with pytest.raises(InfoGANError, match="would have been downloaded"):  # one given wins over the run's
        infogan.evaluate_run(run, samples=100, limit=100, quality_samples=0, data_dir=tmp_path / "nowhere")


# -- every command is one call: each call writes what its command writes ----------------------


def _cli(*argv):
    from infogan.cli import main

    assert main([str(a) for a in argv]) == 0, argv


def test_each_python_call_writes_what_its_command_writes(train_slice, mnist_test, tmp_path, capsys):
    from PIL import Image

    run = _train(tmp_path / "run", 5, train_slice).run_dir
    model, cli, py = infogan.load(run), tmp_path / "cli", tmp_path / "py"
    cli.mkdir(), py.mkdir()
    _cli("sample", run, "--out", cli / "s.png", "-n", 12, "--columns", 4, "--code", "c1=3", "--seed", 2,
         "--device", "cpu")
    images = infogan.save_samples(run, py / "s.png", count=12, columns=4, codes={"c1": 3}, seed=2, device="cpu")
    assert images.shape == (12, 1, 28, 28)
    infogan.save_samples(model, py / "m.png", count=12, columns=4, codes={"c1": 3}, seed=2)  # a model object
    assert (py / "s.png").read_bytes() == (cli / "s.png").read_bytes() == (py / "m.png").read_bytes()
    (run / "evaluation.json").write_text('{"clustering": {"c1": {"mapping": [3, 1, 2, 0, 4, 5, 6, 7, 8, 9]}}}')
    _cli("traverse", run, "--out", cli / "t.png", "--layout", "rows", "--steps", 5, "--device", "cpu")
    assert infogan.save_traversal(run, py / "t.png", layout="rows", steps=5, device="cpu") == ["c1", "c2", "c3"]
    assert (py / "t.png").read_bytes() == (cli / "t.png").read_bytes()  # titled from evaluation.json alike
    png = tmp_path / "digit.png"
    Image.fromarray(mnist_test[0][0, 0].numpy()).save(png)
    idx = tmp_path / "few-idx3-ubyte"
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (3, 28, 28))
    idx.write_bytes(header + mnist_test[0][:3].numpy().tobytes())
    for suffix in (".csv", ".npy"):
        _cli("encode", run, png, idx, "--out", cli / f"codes{suffix}", "--device", "cpu")
        encoded = infogan.encode_files(run, [png, idx], py / f"codes{suffix}", device="cpu")
        assert (py / f"codes{suffix}").read_bytes() == (cli / f"codes{suffix}").read_bytes()
    assert encoded.sources == [str(png), "few-idx3-ubyte[0]", "few-idx3-ubyte[1]", "few-idx3-ubyte[2]"]
    assert torch.equal(encoded.codes["c1"], model.encode(encoded.images)["c1"])
    assert infogan.encode_files(model, png).table.shape == (1, 3)  # one file; nothing written
    _cli("curves", run, "--out", cli / "curves.png")
    assert [r["step"] for r in infogan.save_curves(run, py / "curves.png")] == [5]
    assert Image.open(py / "curves.png").tobytes() == Image.open(cli / "curves.png").tobytes()
    capsys.readouterr()
    _cli("presets")
    assert capsys.readouterr().out.split() == infogan.preset_names()


def test_the_python_calls_refuse_bad_input_as_the_commands_do(train_slice, tmp_path):
    run = _train(tmp_path / "run", 2, train_slice).run_dir
    with pytest.raises(InfoGANError, match="-n is 5,000: a grid holds at most 4,096"):
        infogan.save_samples(tmp_path / "not-loaded", tmp_path / "s.png", count=5000)
    with pytest.raises(InfoGANError, match=r"s.gif must end in .png, .jpg or .jpeg"):
        infogan.save_samples(tmp_path / "not-loaded", tmp_path / "s.gif")
    with pytest.raises(InfoGANError, match="unknown code"):
        infogan.save_samples(run, tmp_path / "s.png", codes={"c9": 1}, device="cpu")
    with pytest.raises(InfoGANError, match=r"codes.txt must end in .csv or .npy"):
        infogan.encode_files(tmp_path / "not-loaded", [tmp_path / "x.png"], tmp_path / "codes.txt")
    with pytest.raises(InfoGANError, match="does not exist"):
        infogan.encode_files(run, [tmp_path / "nowhere.png"], tmp_path / "codes.csv", device="cpu")
    with pytest.raises(InfoGANError, match="is this a run directory"):
        infogan.save_curves(tmp_path, tmp_path / "curves.png")
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".png", ".gif", ".txt", ".csv")]


def test_every_command_has_a_python_call_in_the_docs_table():
    import argparse
    import importlib
    import re

    from infogan.cli import build_parser

    def commands(parser, prefix):
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions:
            return [prefix]
        return [name for word, sub in actions[0].choices.items() for name in commands(sub, f"{prefix} {word}")]

    def resolve(dotted):  # an attribute of the package, or else a module under it
        found, parts = infogan, dotted.split(".")
        for i, part in enumerate(parts[1:], start=2):
            found = getattr(found, part, None) or importlib.import_module(".".join(parts[:i]))
        return found

    page = (Path(__file__).parents[1] / "docs" / "python.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `(infogan [a-z -]+?)` \| `([\w.]+)`", page, flags=re.M))
    for command in commands(build_parser(), "infogan"):
        assert command in table, f"{command} has no row in docs/python.md's table of Python calls"
        assert callable(resolve(table[command])), f"{command}: {table[command]} does not exist"
