"""Hostile input files: IDX files and image files made to exhaust memory or to break the readers
must be refused with a clear InfoGANError, cheaply, before their contents are inflated."""

import functools
import gzip
import http.server
import io
import struct
import threading
import time
import tracemalloc
import warnings
import zlib

import pytest
import torch
from PIL import Image

from infogan.data import load_image_folder, parse_idx, read_idx, sources
from infogan.data.folder import pixel_limit
from infogan.data.inputs import read_inputs
from infogan.errors import InfoGANError

MB = 1024**2


def _gzip_of_zeros(path, head, zeros):
    """A gzip file of `head` and then `zeros` zero bytes, compressed as it is made (a few KB a MB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MB)
    parts = [compressor.compress(head)]
    for start in range(0, zeros, MB):
        parts.append(compressor.compress(block[: min(MB, zeros - start)]))
    parts.append(compressor.flush())
    path.write_bytes(b"".join(parts))
    return path


def _idx_header(*dims):
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


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


# -- IDX ------------------------------------------------------------------------------------------


def test_idx_gzip_inflating_past_its_header_is_refused_as_soon_as_it_does(tmp_path):
    path = _gzip_of_zeros(tmp_path / "bomb-idx3-ubyte.gz", _idx_header(1, 28, 28), 50 * MB)
    assert path.stat().st_size < 100_000
    raised, peak, seconds = _peak_bytes(lambda: read_idx(path))
    assert raised is not None and "longer than its header says" in str(raised) and str(path) in str(raised)
    assert peak < 4 * MB and seconds < 2


def test_idx_header_that_does_not_match_the_known_file_is_refused_before_its_body(tmp_path):
    # t10k labels are 10000 bytes: a header claiming 10^9 is refused without reading the 50 MB after it
    path = _gzip_of_zeros(tmp_path / "t10k-labels-idx1-ubyte.gz", _idx_header(10**9), 50 * MB)
    sha256 = sources.IDX_DATASETS["mnist"].sha256["t10k-labels-idx1-ubyte"]
    raised, peak, seconds = _peak_bytes(lambda: read_idx(path, sha256))
    assert raised is not None and "header for data of shape (1000000000,)" in str(raised)
    assert "holds (10000,)" in str(raised) and peak < 4 * MB and seconds < 2


def test_idx_header_claiming_a_huge_body_is_read_only_as_far_as_the_file_goes(tmp_path):
    path = _gzip_of_zeros(tmp_path / "short-idx1-ubyte.gz", _idx_header(10**9), 4 * MB)
    raised, peak, _ = _peak_bytes(lambda: read_idx(path))
    assert raised is not None and "truncated" in str(raised) and "found 4194304" in str(raised)
    assert peak < 16 * MB  # what the file holds, not the gigabyte its header claims


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_idx_header(2**16, 2**16, 2**16, 2**16), "more than the"),  # 2^64 bytes: wraps to 0 in int64
        (_idx_header(2**32 - 1, 2**32 - 1, 2**32 - 1), "more than the"),
        (_idx_header(2**16, 2**16), "more than the"),  # 4 GiB: above the cap
        (_idx_header(*[1] * 255) + b"\x00", "255 dimensions"),
        (_idx_header(*[1] * 33) + b"\x00", "33 dimensions"),
    ],
    ids=["2^64 bytes", "2^96 bytes", "4 GiB", "255 dims", "33 dims"],
)
def test_idx_sizes_past_any_array_are_clear_errors(tmp_path, data, message):
    with pytest.raises(InfoGANError, match=message):
        parse_idx(data)
    path = tmp_path / "odd-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(InfoGANError, match=message):
        read_idx(path)


def test_idx_plain_and_gzip_files_verify_their_uncompressed_bytes(tmp_path, data_dir):
    raw = gzip.decompress((data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    sha256 = sources.IDX_DATASETS["mnist"].sha256["t10k-labels-idx1-ubyte"]
    plain = tmp_path / "t10k-labels-idx1-ubyte"
    plain.write_bytes(raw)
    packed = tmp_path / "packed" / "t10k-labels-idx1-ubyte.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(raw))
    assert (read_idx(plain, sha256) == read_idx(packed, sha256)).all()
    plain.write_bytes(raw[:-1] + bytes([(raw[-1] + 1) % 10]))
    with pytest.raises(InfoGANError, match="wrong contents"):
        read_idx(plain, sha256)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_downloaded_gzip_bomb_is_refused_without_inflating_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    served = tmp_path / "served"
    served.mkdir()
    _gzip_of_zeros(served / "t10k-labels-idx1-ubyte.gz", _idx_header(10000), 50 * MB)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        mirror = f"http://127.0.0.1:{server.server_address[1]}/"
        dataset, target = sources.IDX_DATASETS["mnist"], tmp_path / "cache" / "mnist"
        download = functools.partial(sources.download_file, dataset, "t10k-labels-idx1-ubyte", target, [mirror])
        raised, peak, _ = _peak_bytes(download)
    finally:
        server.shutdown()
        server.server_close()
    assert raised is not None and "wrong contents (more than the 10008 bytes it should hold" in str(raised)
    assert peak < 4 * MB and not target.exists()


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
    assert bomb.stat().st_size < 100_000 and side * side > pixel_limit(32)
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


# -- what any image reader must refuse: other formats, broken files, more pixels than a model uses --


def broken_png() -> bytes:
    """A tiny valid PNG whose pixel data is cut after half its IDAT chunk and followed by a chunk
    of type 00 01 02 03: Pillow opens it, and raises SyntaxError("broken PNG file") on load."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 7).save(buffer, "PNG")
    data = buffer.getvalue()
    start = data.index(b"IDAT")
    pixels = data[start + 4 : start + 4 + struct.unpack(">I", data[start - 4 : start])[0]]
    head = data[: start - 4] + _png_chunk(b"IDAT", pixels[: len(pixels) // 2])
    return head + _png_chunk(b"\x00\x01\x02\x03", b"") + _png_chunk(b"IEND", b"")


def other_format(kind: str) -> bytes:
    """A small image in a format Pillow knows but the readers here must not decode."""
    if kind == "EPS":  # Pillow opens an EPS header without Ghostscript; loading it would run Ghostscript
        return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n%%EOF\n"
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 90).save(buffer, kind)
    return buffer.getvalue()


def test_a_broken_png_chunk_is_an_unreadable_file_everywhere(tmp_path, capsys):
    bad = tmp_path / "images" / "broken.png"
    bad.parent.mkdir()
    bad.write_bytes(broken_png())
    Image.new("L", (28, 28), 50).save(tmp_path / "images" / "good.png")
    with pytest.raises(InfoGANError, match=f"cannot read {bad} as an image"):
        read_inputs([bad], 1, 28)
    assert load_image_folder(tmp_path / "images", 1, 32).shape == (1, 1, 32, 32)
    assert "skipped 1 unreadable image file(s)" in capsys.readouterr().err
    with pytest.raises(InfoGANError, match=r"broken\.png.*data\.on_bad_file: skip"):
        load_image_folder(tmp_path / "images", 1, 32, on_bad_file="error")


@pytest.mark.parametrize("kind", ["TIFF", "WEBP", "EPS", "BMP", "GIF"])
def test_only_png_and_jpeg_are_decoded(tmp_path, capsys, kind):
    named = tmp_path / f"x.{kind.lower()}"
    named.write_bytes(other_format(kind))
    with pytest.raises(InfoGANError) as info:
        read_inputs([named], 1, 28)
    assert str(named) in str(info.value) and "PNG, JPEG" in str(info.value)
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "disguised.png").write_bytes(other_format(kind))  # the contents decide, not the name
    Image.new("L", (28, 28), 50).save(folder / "good.png")
    assert load_image_folder(folder, 1, 28).shape == (1, 1, 28, 28)
    assert "skipped 1 unreadable" in capsys.readouterr().err
    with pytest.raises(InfoGANError, match=r"disguised\.png.*PNG, JPEG"):
        load_image_folder(folder, 1, 28, on_bad_file="error")


def test_an_image_has_at_most_the_pixels_the_model_can_use(tmp_path, capsys):
    assert pixel_limit(28) == pixel_limit(64) == 2048**2 and pixel_limit(128) == 4096**2
    (tmp_path / "images").mkdir()
    large = _png_bomb(tmp_path / "images" / "large.png", 3000)  # 9 MP: under Pillow's limit, over ours
    Image.new("L", (2048, 2048), 200).save(tmp_path / "images" / "fits.png")
    raised, peak, seconds = _peak_bytes(lambda: read_inputs([large], 1, 28))
    assert raised is not None and str(large) in str(raised) and "too large (3000x3000 pixels)" in str(raised)
    assert "at most 4194304 pixels (2048x2048)" in str(raised) and peak < 4 * MB and seconds < 1
    assert load_image_folder(tmp_path / "images", 1, 28).shape == (1, 1, 28, 28)
    assert "skipped 1 unreadable" in capsys.readouterr().err
    assert read_inputs([large], 1, 128)[0].shape == (1, 1, 128, 128)  # a 128x128 model may take 4096x4096


def test_a_large_jpeg_is_decoded_at_a_reduced_size(tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    photo, small = tmp_path / "photo.jpg", tmp_path / "small.jpg"
    Image.new("RGB", (6000, 4000), (30, 120, 220)).save(photo, quality=90)  # 24 MP, over 2048x2048
    Image.new("RGB", (64, 48), (30, 120, 220)).save(small, quality=90)
    sizes = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def draft(image, mode, size):
        result = real_draft(image, mode, size)
        sizes.append(image.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft)
    images, _ = read_inputs([photo, small], 3, 32)
    assert sizes == [(750, 500)]  # the photo decoded at 1/8; the small file as it is, pixel for pixel
    colour = images.float().mean(dim=(2, 3))
    assert images.shape == (2, 3, 32, 32) and (colour - torch.tensor([30.0, 120, 220])).abs().max() < 3
