"""Sizes, values and messages of `sample`, `traverse` and `curves`, from the command line and from
Python (issue 30, defects 10, 11, 19, 20 and 22): each is refused with a message naming the
limit, before anything big is allocated or anything is written."""

import json

import pytest
import yaml

import infogan
from infogan.cli import main
from infogan.config import config_from_dict
from infogan.core.latent import MAX_CODE, MAX_STEPS
from infogan.core.networks import build_networks
from infogan.model import InfoGAN

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """An untrained MNIST-shaped model (c1 Cat(10), c2 and c3 continuous), exported."""
    config = config_from_dict({})
    folder = tmp_path_factory.mktemp("sizes") / "export"
    InfoGAN(config, *build_networks(config.model, config.latent), calibrate=False).export(folder)
    return folder


def refused(args, capsys) -> str:
    assert main([*args, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    return err


# -- 10: sizes bounded by what their output can use -----------------------------------------


def test_a_huge_sample_grid_is_refused_before_anything_is_generated(export, tmp_path, capsys):
    err = refused(["sample", str(export), "--out", str(tmp_path / "s.png"), "-n", "100000000"], capsys)
    assert "-n" in err and "4,096" in err and not (tmp_path / "s.png").exists()
    model = infogan.load(export)
    with pytest.raises(infogan.InfoGANError, match="GB"):
        model.generate(100_000_000)


def test_a_huge_traversal_is_refused(export, tmp_path, capsys):
    out = tmp_path / "t.png"
    err = refused(["traverse", str(export), "--out", str(out), "--code", "c2", "--steps", "100000"], capsys)
    assert "steps" in err and f"2 to {MAX_STEPS}" in err
    err = refused(["traverse", str(export), "--out", str(out), "--rows", "100000"], capsys)
    assert "rows" in err and "100,000" in err
    err = refused(["traverse", str(export), "--out", str(tmp_path / "t.gif"), "--frame-ms", "1000000000"], capsys)
    assert "frame-ms" in err and not out.exists() and not (tmp_path / "t.gif").exists()
    model = infogan.load(export)
    with pytest.raises(infogan.InfoGANError, match=f"steps must be from 2 to {MAX_STEPS}"):
        infogan.save_traversal(model, out, code="c2", steps=100_000)
    assert not out.exists()


# -- 11: code values that fit the model ----------------------------------------------------


def test_code_values_beyond_the_range_are_refused_not_overflowed(export, tmp_path, capsys):
    out = tmp_path / "x.png"
    err = refused(["sample", str(export), "--out", str(out), "--code", "c2=1e308"], capsys)
    assert f"-{MAX_CODE:g} to {MAX_CODE:g}" in err and "RuntimeError" not in err
    err = refused(["traverse", str(export), "--out", str(out), "--code", "c2", "--range", "1e300", "1e308"], capsys)
    assert f"-{MAX_CODE:g}" in err and "RuntimeError" not in err and not out.exists()
    model = infogan.load(export)
    with pytest.raises(infogan.InfoGANError, match="continuous codes go from"):
        model.generate(2, {"c3": -1e39})
    assert model.generate(2, {"c2": MAX_CODE, "c3": -MAX_CODE}).shape == (2, 1, 28, 28)


# -- 19: --code without a value --------------------------------------------------------------


def test_a_code_without_a_value_gets_the_code_message(export, tmp_path, capsys):
    err = refused(["sample", str(export), "--out", str(tmp_path / "x.png"), "--code", "c1"], capsys)
    assert "--code c1: give a value" in err and "section.key" not in err


# -- 22: one rule for a sweep, and no folders made for an output ----------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--range", "2", "-2"], "needs low < high"),
        (["--range", "1", "1"], "needs low < high"),
        (["--steps", "1"], f"steps must be from 2 to {MAX_STEPS}"),
    ],
)
def test_a_sweep_the_explorer_refuses_is_refused_here_too(export, tmp_path, capsys, flags, message):
    out = tmp_path / "t.png"
    assert message in refused(["traverse", str(export), "--out", str(out), "--code", "c2", *flags], capsys)
    assert not out.exists()
    from infogan.explore.runs import parse_sweep

    query = {"code": "c2", "steps": "1"} if "--steps" in flags else {"code": "c2", "low": flags[1], "high": flags[2]}
    with pytest.raises(infogan.InfoGANError, match=message):
        parse_sweep(query, infogan.load(export))


def test_an_output_in_a_missing_folder_is_refused_and_no_folder_made(export, tmp_path, capsys):
    for command in (["sample"], ["traverse", "--code", "c2"]):
        out = tmp_path / "missing" / "deeper" / "s.png"
        err = refused([command[0], str(export), "--out", str(out), *command[1:]], capsys)
        assert "does not exist" in err and "create it first" in err
        assert not (tmp_path / "missing").exists()


# -- 20: curves of a run with one log point -----------------------------------------------


@pytest.fixture
def one_point_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config_from_dict({}).to_dict()))
    record = {"step": 50, "d_loss": 1.2, "g_loss": 0.8, "d_real": 0.6, "d_fake": 0.4, "mi_c1": 0.5,
              "info_loss_c2": 0.9, "info_loss_c3": 0.7, "images_per_s": 100.0}  # fmt: skip
    (run / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    return run


def test_curves_of_one_log_point_draw_markers(one_point_run, tmp_path, capsys):
    from infogan.viz.curves import curves_figure, read_metrics

    records = read_metrics(one_point_run / "metrics.jsonl")
    figure = curves_figure(records, config_from_dict({}))
    lines = [line for axes in figure.axes for line in axes.get_lines() if not line.get_label().startswith("H(")]
    assert len(lines) == 1 + 2 + 4  # mi_c1; c2, c3; the four game values
    for line in lines:
        assert len(line.get_xdata()) == 1 and line.get_marker() == "o"
    out = tmp_path / "curves.png"
    assert main(["curves", str(one_point_run), "--out", str(out)]) == 0 and out.is_file()
    with pytest.raises(infogan.InfoGANError, match="too little to plot"):
        curves_figure([], config_from_dict({}))
