"""Hostile input files: image files made to exhaust memory or to break the readers
must be refused with a clear InfoGANError, cheaply, before their contents are inflated."""

import struct
import time
import tracemalloc
import warnings
import zlib

import pytest
from PIL import Image

from infogan.data import load_image_folder
from infogan.data.folder import MAX_IMAGE_PIXELS
from infogan.errors import InfoGANError
from infogan.images import read_inputs

MB = 1024**2


def _peak_bytes(function):
    """(what `function` raised, the most bytes Python had allocated meanwhile, seconds taken)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        function()
    except InfoGANError as exc:
        raised = exc
    else:
        raised = None
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak, seconds


# -- image files ----------------------------------------------------------------------------------


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_bomb(path, side):
    """A valid 1-bit black PNG of side x side pixels, compressed as it is made (tens of KB)."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)  # filter byte, then the row's bits
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def _folder_with_a_bomb(root, side):
    root.mkdir()
    for i in range(2):
        Image.new("L", (32, 32), 40 * i).save(root / f"good{i}.png")
    return _png_bomb(root / "bomb.png", side)


@pytest.mark.parametrize(
    ("side", "size"),  # past Pillow's error limit (it refuses it while opening); past its warning limit only
    [(20000, "400000000 pixels"), (10000, "10000x10000 pixels")],
)
def test_decompression_bomb_in_an_image_folder_is_skipped_and_counted(tmp_path, capsys, side, size):
    bomb = _folder_with_a_bomb(tmp_path / "images", side)
    assert bomb.stat().st_size < 100_000 and side * side > MAX_IMAGE_PIXELS
    pillow_limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning gets out either
        raised, peak, seconds = _peak_bytes(lambda: load_image_folder(tmp_path / "images", 1, 32))
    assert raised is None and peak < 8 * MB and seconds < 2
    assert "skipped 1 unreadable image file(s)" in capsys.readouterr().err
    assert pillow_limit == Image.MAX_IMAGE_PIXELS  # Pillow's own setting is left alone
    with pytest.raises(InfoGANError, match=rf"bomb\.png is too large \({size}\)") as info:
        load_image_folder(tmp_path / "images", 1, 32, on_bad_file="error")
    assert "data.on_bad_file: skip" in str(info.value)


def test_image_limit_holds_whatever_pillow_is_set_to(tmp_path, monkeypatch):
    bomb = _png_bomb(tmp_path / "bomb.png", 10000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # someone else switched Pillow's check off
    raised, peak, _ = _peak_bytes(lambda: read_inputs([bomb], 1, 28))
    assert raised is not None and peak < 8 * MB
    assert str(bomb) in str(raised) and "too large (10000x10000 pixels)" in str(raised)


def test_decompression_bomb_given_to_encode_names_the_file(tmp_path):
    bomb = _png_bomb(tmp_path / "bomb.png", 20000)
    good = tmp_path / "good.png"
    Image.new("L", (28, 28)).save(good)
    with pytest.raises(InfoGANError) as info:
        read_inputs([good, bomb], 1, 28)
    message = str(info.value)
    assert str(bomb) in message and "too large" in message and "give a smaller image" in message
    images, names = read_inputs([good], 1, 28)
    assert images.shape == (1, 1, 28, 28) and names == [str(good)]
