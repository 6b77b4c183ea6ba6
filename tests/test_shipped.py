"""Shipped models: benchmarks/ship_model.py end to end on a tiny run, a shipped model opened by
its name from every front end (a temporary shipped folder stands in for the package's), name
resolution's rules, and the models the package really ships, scored on real test images."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

import infogan
import infogan.checkpoint as ckpt
import infogan.shipped
from infogan.cli import main
from infogan.data import load_split
from infogan.errors import InfoGANError
from infogan.explore.runs import load_runs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import ship_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CARD_KEYS = {"name", "title", "dataset", "command", "commit", "seed", "steps", "train_seconds", "machine",
             "evaluation", "sha256", "bytes", "stored_as"}  # fmt: skip
SMALL = [
    "model.architecture=mnist_small", "model.width=16", "optim.batch_size=16", "optim.steps=4",
    "logging.log_every=2", "logging.checkpoint_every=2", "logging.keep_checkpoints=5", "logging.image_every=1000",
    "logging.tensorboard=false",
]  # fmt: skip
SLICE = 2000  # real test images each installed model is scored on
TOLERANCE = 0.03  # below its card's full-test accuracy that a slice may score


@pytest.fixture(scope="module")
def run(tmp_path_factory, train_slice):
    out = tmp_path_factory.mktemp("shipped") / "run"
    infogan.train("mnist", out=out, overrides=SMALL, images=train_slice, runtime={"device": "cpu", "threads": 1},
                  progress="none")  # fmt: skip
    return out


@pytest.fixture(scope="module")
def root(run, data_dir, tmp_path_factory):
    """A shipped folder holding one model, `tiny`, shipped by the script."""
    into = tmp_path_factory.mktemp("shipped-root")
    argv = [str(run), "--name", "tiny", "--title", "A tiny test model", "--command", "infogan train --out run",
            "--data-dir", str(data_dir), "--into", str(into), "--commit", "0123abc", "--processor", "test CPU",
            "--quality-samples", "0", "--half"]  # fmt: skip
    assert ship_model.main(argv) == 0
    return into


@pytest.fixture
def shipped(root, monkeypatch, tmp_path):
    """The temporary shipped folder in place of the package's, and a clean working folder."""
    monkeypatch.setattr(infogan.shipped, "ROOT", root)
    monkeypatch.chdir(tmp_path)
    return root / "tiny"


def _files(folder: Path) -> dict[str, float]:
    return {path.name: path.stat().st_mtime for path in folder.iterdir()}


def test_the_script_ships_the_newest_checkpoint_with_its_card_and_readme(root, run):
    folder = root / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == sorted(ship_model.OUR_FILES)
    card = json.loads((folder / "card.json").read_text())
    assert set(card) >= CARD_KEYS
    assert (card["name"], card["dataset"], card["seed"], card["steps"]) == ("tiny", "mnist", 0, 4)
    machine = card["machine"]
    assert (card["commit"], machine["processor"], machine["precision"]) == ("0123abc", "test CPU", "fp32")
    assert machine["threads"] == 1 and card["train_seconds"] > 0
    assert card["sha256"] == infogan.shipped.sha256_of(folder / "model.safetensors")
    assert card["bytes"] == (folder / "model.safetensors").stat().st_size
    evaluation = card["evaluation"]
    assert (evaluation["split"], evaluation["images"], evaluation["code"]) == ("test", 10000, "c1")
    assert 0 <= evaluation["accuracy"] <= 1 and "Hungarian" in evaluation["protocol"]
    assert evaluation["quality_score"] is None and "skipped" in evaluation["quality_note"]
    report = json.loads((folder / "evaluation.json").read_text())
    assert report["clustering"]["c1"]["accuracy"] == evaluation["accuracy"]
    assert json.loads((folder / "config.json").read_text())["runtime"]["data_dir"] == ""  # no path of the trainer's
    shipped = ckpt.load_model(folder)
    newest = ckpt.load_snapshot(ckpt.checkpoint_paths(run)[-1])
    assert shipped.step == newest.step
    assert card["stored_as"] == "float16"  # --half: every weight as float16, the nearest to the checkpoint's
    for name, tensor in newest.networks["generator"].items():
        if tensor.is_floating_point():
            assert torch.equal(shipped.networks["generator"][name], tensor.half())
    text = (folder / "README.md").read_text()
    for fact in ("infogan explore tiny", 'infogan.load("tiny")', "infogan train --out run", "0123abc", card["sha256"]):
        assert fact in text


def test_the_script_takes_the_commit_and_processor_the_run_recorded(run, data_dir, tmp_path, monkeypatch):
    """Without --commit and --processor the card says what the run's history recorded at its start,
    not what the machine that ships it has now."""
    history = run / "history.jsonl"
    entries = [json.loads(line) for line in history.read_text().splitlines()]
    entries[0]["machine"]["processor"] = "Recorded CPU 9000"
    entries[0]["source"] = {"commit": "feed", "src_changed": True}
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    argv = [str(copy), "--name", "recorded", "--title", "t", "--command", "c", "--into", str(tmp_path / "into"),
            "--data-dir", str(data_dir), "--quality-samples", "0"]  # fmt: skip
    assert ship_model.main(argv) == 0
    card = json.loads((tmp_path / "into" / "recorded" / "card.json").read_text())
    assert card["machine"]["processor"] == "Recorded CPU 9000"
    assert card["commit"] == "feed (src/ had uncommitted changes)"


def test_the_script_refuses_to_replace_a_model_without_force(root, run, data_dir, capsys):
    argv = [str(run), "--name", "tiny", "--title", "t", "--command", "c", "--into", str(root), "--commit", "c",
            "--processor", "p"]  # fmt: skip
    assert ship_model.main(argv) == 2
    assert "--force" in capsys.readouterr().err
    assert ship_model.main([*argv[:1], "--name", "Bad/Name", *argv[3:]]) == 2
    assert "--name" in capsys.readouterr().err


def test_training_time_is_read_from_the_logs_windows_across_a_resume(tmp_path):
    lines = [{"step": 2, "images_per_s": 16.0}, {"step": 4, "images_per_s": 32.0}, {"step": 7, "images_per_s": 8.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    events = [{"event": "start", "step": 0}, {"event": "resume", "step": 5}]
    (tmp_path / "history.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))
    # windows of 2, 2 and 2 steps (5 to 7: the steps before the resume were not kept) of 8 images
    assert ship_model.train_seconds(tmp_path, 8) == 2 * 8 / 16 + 2 * 8 / 32 + 2 * 8 / 8
    assert ship_model.train_seconds(tmp_path / "nowhere", 8) is None


def test_a_shipped_name_opens_in_every_python_call(shipped, run, tmp_path):
    before = _files(shipped)
    model = infogan.load("tiny")
    assert model.step == 4
    assert infogan.shipped_models() == {"tiny": "A tiny test model"}
    assert infogan.model_card("tiny") == json.loads((shipped / "card.json").read_text())
    report = infogan.evaluate_run("tiny", limit=100, samples=100, quality_samples=0, device="cpu")
    assert report["images"] == 100
    assert infogan.save_traversal("tiny", "t.png", device="cpu") == ["c1", "c2", "c3"]
    assert infogan.save_samples("tiny", "one.png", count=1, device="cpu").shape == (1, 1, 28, 28)
    assert infogan.encode_files("tiny", ["one.png"], "codes.csv", device="cpu").codes["c1"].shape == (1,)
    result = infogan.select(["tiny", run], "agreement", images=64, device="cpu", log=lambda line: None)
    assert {entry["run"] for entry in result["ranking"]} == {"tiny", str(run)}
    assert _files(shipped) == before, "nothing is written into a shipped model's folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.csv", "one.png", "t.png"]


def test_a_shipped_name_works_on_the_command_line(shipped, tmp_path, capsys):
    before = _files(shipped)
    assert main(["evaluate", "tiny", "--device", "cpu"]) == 2
    assert "give --out" in capsys.readouterr().err
    quick = ["--limit", "100", "--samples", "100", "--quality-samples", "0", "--device", "cpu"]
    assert main(["evaluate", "tiny", "--out", "report.json", *quick]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["images"] == 100
    assert main(["traverse", "tiny", "--out", "rows.png", "--layout", "rows", "--device", "cpu"]) == 0
    assert "c1 (digit)" in capsys.readouterr().out  # titled from the evaluation.json shipped with it
    assert main(["sample", "tiny", "--out", "s.png", "-n", "4", "--device", "cpu"]) == 0
    assert main(["encode", "tiny", "s.png", "--out", "codes.csv", "--device", "cpu"]) == 0
    assert main(["export", "tiny", "--out", "exported", "--device", "cpu"]) == 0
    assert ckpt.load_model(tmp_path / "exported").step == 4
    assert main(["curves", "tiny", "--out", "curves.png"]) == 2
    assert "no training log" in capsys.readouterr().err
    assert main(["models"]) == 0
    assert capsys.readouterr().out.split() == ["tiny", "A", "tiny", "test", "model"]
    assert main(["models", "tiny"]) == 0
    out = capsys.readouterr().out
    assert '"name": "tiny"' in out and "SHA-256" in out
    assert _files(shipped) == before
    assert not (tmp_path / "curves.png").exists()


def test_the_explorer_loads_a_shipped_model_with_its_labels(shipped):
    [explored] = load_runs([Path("tiny")], "cpu")
    assert explored.model is not None and explored.model.step == 4
    assert explored.labels.note is None
    assert explored.labels.codes["c1"].title == "c1 (digit)"


def test_a_path_that_exists_wins_over_a_shipped_name(shipped, run, tmp_path):
    older = ckpt.checkpoint_paths(run)[0]  # step 2; the shipped tiny is step 4
    infogan.InfoGAN.from_snapshot(ckpt.load_snapshot(older)).export(tmp_path / "tiny")
    assert infogan.load("tiny").step == 2
    assert infogan.shipped.resolve("tiny") == Path("tiny")
    shutil.rmtree(tmp_path / "tiny")
    (tmp_path / "tiny").mkdir()  # a folder of that name that holds no model: said, with where the shipped one is
    with pytest.raises(InfoGANError, match=r"holds no checkpoints.*exists here, so it was read instead"):
        infogan.load("tiny")
    assert infogan.shipped.resolve(shipped) == shipped  # the shipped folder by its path


def test_an_unknown_name_says_the_path_does_not_exist_and_lists_the_shipped_names(shipped, tmp_path, capsys):
    with pytest.raises(InfoGANError, match=r"nosuch does not exist.*shipped: tiny"):
        infogan.load("nosuch")
    with pytest.raises(InfoGANError, match="not a shipped model; shipped: tiny"):
        infogan.model_card("nosuch")
    assert main(["sample", "nosuch", "--out", "s.png"]) == 2
    assert "shipped: tiny" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InfoGANError, match="ships no models"):
        infogan.shipped.resolve("tiny", root=empty)


def test_a_damaged_shipped_model_is_refused_by_its_sha256(shipped, tmp_path, monkeypatch, capsys):
    copy = tmp_path / "root"
    shutil.copytree(shipped.parent, copy)
    weights = copy / "tiny" / "model.safetensors"
    payload = bytearray(weights.read_bytes())
    payload[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(payload))
    monkeypatch.setattr(infogan.shipped, "ROOT", copy)
    with pytest.raises(InfoGANError, match="shipped model tiny is damaged.*reinstall infogan"):
        infogan.load("tiny")
    with pytest.raises(InfoGANError, match="cannot explore tiny: the shipped model tiny is damaged"):
        load_runs([Path("tiny")], "cpu")
    assert main(["evaluate", "tiny", "--out", "report.json"]) == 2
    assert "damaged" in capsys.readouterr().err and not Path("report.json").exists()
    weights.unlink()
    with pytest.raises(InfoGANError, match="reinstall infogan"):
        infogan.load("tiny")


# -- the models the package ships ----------------------------------------------------------------


def _data_root(dataset: str) -> Path | None:
    for candidate in (os.environ.get("INFOGAN_DATA_DIR"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / dataset).is_dir():
            return Path(candidate)
    return None


@pytest.mark.parametrize("name", infogan.shipped.shipped_names() or [None])
def test_each_shipped_model_scores_its_card_on_real_test_images(name):
    assert name is not None, f"the package ships no models (nothing with a card in {infogan.shipped.ROOT})"
    card = infogan.model_card(name)
    assert set(card) >= CARD_KEYS and card["name"] == name
    folder = infogan.shipped.resolve(name)  # checks the SHA-256
    assert (folder / "README.md").is_file() and (folder / "evaluation.json").is_file()
    data = _data_root(card["dataset"])
    if data is None:
        pytest.skip(f"no {card['dataset']} files here (set INFOGAN_DATA_DIR)")
    images, labels = load_split(card["dataset"], "test", data, download=False)
    model = infogan.load(name)
    code = card["evaluation"]["code"]
    scores = infogan.cluster_metrics(model.encode(images[:SLICE])[code].numpy(), labels[:SLICE].numpy())
    assert scores["accuracy"] >= card["evaluation"]["accuracy"] - TOLERANCE
