"""dSprites generated on its exact factor grid: counts, index order, shapes, determinism, training."""

import io
import json
import math

import numpy as np
import pytest

from infogan.cli import main
from infogan.data import dsprites
from infogan.errors import InfoGANError


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def packed(cache):
    return dsprites.load_packed(cache / "infogan" / "dsprites")


def test_grid_sizes_and_index_formula():
    assert dsprites.COUNT == 3 * 6 * 40 * 32 * 32 == 737_280
    shape, scale, orientation, x, y = 2, 5, 39, 7, 30
    i = dsprites.index_of(shape, scale, orientation, x, y)
    assert i == (((shape * 6 + scale) * 40 + orientation) * 32 + x) * 32 + y
    assert dsprites.factors(i).tolist() == [shape, scale, orientation, x, y]
    values = dsprites.factor_values(np.array([0, dsprites.COUNT - 1]))
    assert values[0].tolist() == [0, 0.5, 0, 0, 0]
    assert values[1].tolist() == pytest.approx([2, 1.0, 2 * math.pi, 1, 1])


def test_symmetric_shapes_look_the_same_when_turned():
    for theta in (0.0, 0.4, 1.1):
        square = dsprites.render_sprite("square", 1.0, theta)
        assert (square != dsprites.render_sprite("square", 1.0, theta + math.pi / 2)).sum() <= 4
        ellipse = dsprites.render_sprite("ellipse", 1.0, theta)
        assert (ellipse != dsprites.render_sprite("ellipse", 1.0, theta + math.pi)).sum() <= 4
        heart = dsprites.render_sprite("heart", 1.0, theta)
        assert (heart != dsprites.render_sprite("heart", 1.0, theta + math.pi)).sum() > 40
    assert np.array_equal(dsprites.render_sprite("heart", 0.7, 0.0), dsprites.render_sprite("heart", 0.7, 2 * math.pi))


def test_bigger_scales_cover_more_pixels():
    for shape in dsprites.SHAPES:
        areas = [dsprites.render_sprite(shape, s, 0.0).sum() for s in dsprites.SCALES]
        assert areas == sorted(areas) and areas[-1] > 3 * areas[0]


def test_every_image_is_its_sprite_moved_by_whole_pixels(packed):
    assert packed.shape == (dsprites.COUNT, 512)
    rng = np.random.default_rng(0)
    for index in rng.choice(dsprites.COUNT, 20, replace=False):
        shape, scale, orientation, x, y = dsprites.factors(index)
        name = dsprites.SHAPES[shape]
        sprite = dsprites.render_sprite(name, dsprites.SCALES[scale], dsprites.ORIENTATIONS[orientation])
        expected = np.zeros((64, 64), dtype=np.uint8)
        expected[y : y + dsprites.SPRITE, x : x + dsprites.SPRITE] = sprite * 255
        image = dsprites.unpack(packed[index : index + 1])[0, 0].numpy()
        assert np.array_equal(image, expected), index


def test_generation_is_deterministic_and_cached(packed, cache):
    path = cache / "infogan" / "dsprites" / dsprites.CACHE_NAME
    stamp = path.stat().st_mtime_ns
    again = dsprites.load_packed(path.parent)
    assert path.stat().st_mtime_ns == stamp  # read from the cache, not made again
    block = dsprites._placements(dsprites.render_sprite("ellipse", dsprites.SCALES[3], dsprites.ORIENTATIONS[17]))
    start = dsprites.index_of(1, 3, 17, 0, 0)
    assert np.array_equal(again[start : start + 1024], block)


def test_a_damaged_cache_is_reported(tmp_path):
    (tmp_path / dsprites.CACHE_NAME).write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InfoGANError, match="delete it to regenerate"):
        dsprites.load_packed(tmp_path)


def _npy_claiming(shape):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 512), dtype=np.uint8))
    return buffer.getvalue().replace(b"(2, 512)", repr(shape).encode())


@pytest.mark.parametrize(
    "content",
    [
        b"",  # an empty file
        _npy_claiming((10**30, 512)),  # a header claiming more elements than an integer holds
        _npy_claiming((dsprites.COUNT, 512)),  # the right shape, no data (it is memory-mapped: nothing is read)
        b"PK\x03\x04" + bytes(100),  # a zip (an .npz archive) in its place
    ],
    ids=["empty", "huge header", "truncated", "zip"],
)
def test_a_hostile_cache_is_reported_without_reading_it(tmp_path, content):
    (tmp_path / dsprites.CACHE_NAME).write_bytes(content)
    with pytest.raises(InfoGANError, match="delete it to regenerate"):
        dsprites.load_packed(tmp_path)


def test_an_npz_archive_in_place_of_the_cache_is_reported(tmp_path):
    np.savez(tmp_path / "archive.npz", packed=np.zeros((2, 512), dtype=np.uint8))
    (tmp_path / "archive.npz").rename(tmp_path / dsprites.CACHE_NAME)
    with pytest.raises(InfoGANError, match="is not a .npy array"):
        dsprites.load_packed(tmp_path)


def test_train_and_evaluate_dsprites_from_the_cli(packed, cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    out = tmp_path / "run"
    args = ["train", "--preset", "dsprites", "--out", str(out), "--max-steps", "2", "--device", "cpu",
            "--set", "optim.batch_size=8", "--set", "logging.tensorboard=false", "--progress", "lines"]  # fmt: skip
    assert main(args) == 0
    quick = ["--protocol", "none", "--quality-samples", "0"]  # the metrics' protocols: test_evaluate_dsprites.py
    assert main(["evaluate", str(out), "--samples", "50", "--limit", "500", "--device", "cpu", *quick]) == 0
    printed = capsys.readouterr().out
    assert "MIG " in printed
    result = json.loads((out / "evaluation.json").read_text())["disentanglement"]
    assert 0.0 <= result["mig"] <= 1.0 and len(result["per_factor"]) == 5
    assert np.array(result["mutual_information"]).shape == (5, 5)
    saved = np.load(out / "factors.npz")
    assert saved["factors"].shape == (500, 5) and saved["codes"].shape == (500, 5)
    assert np.array_equal(saved["factor_values"][:, 1], dsprites.SCALES[saved["factors"][:, 1]])
    assert saved["code_names"].tolist() == ["c1", "c2", "c3", "c4", "c5"]
    assert saved["factor_names"].tolist() == list(dsprites.FACTOR_NAMES)
