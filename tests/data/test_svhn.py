"""SVHN from .mat files in its layout, made by the tests (the real files are not on this machine)."""

import functools
import gzip
import http.server
import struct
import threading
import tracemalloc
import zlib

import numpy as np
import pytest
import scipy.io
import torch

from infogan.cli import main
from infogan.data import sources, svhn
from infogan.errors import InfoGANError


def _write_mat(path, count, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(32, 32, 3, count), dtype=np.uint8)
    labels = (np.arange(count) % 10 + 1).reshape(-1, 1).astype(np.uint8)  # 1..10, 10 meaning digit 0
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"X": images, "y": labels})
    return images, labels


@pytest.fixture
def small_svhn(tmp_path, monkeypatch):
    monkeypatch.setattr(svhn, "COUNTS", {"train": 60, "test": 30, "extra": 10})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("INFOGAN_DATA_DIR", raising=False)
    monkeypatch.setattr(sources, "DEBIAN_ROOT", tmp_path / "debian")
    root = tmp_path / "data"
    train = _write_mat(root / "svhn" / "train_32x32.mat", 60)
    _write_mat(root / "svhn" / "test_32x32.mat", 30, seed=1)
    return root, train


def test_layout_labels_and_pixels(small_svhn):
    root, (raw_images, raw_labels) = small_svhn
    images, labels = svhn.load_svhn("train", root, download=False)
    assert images.shape == (60, 3, 32, 32) and images.dtype == torch.uint8
    assert labels[:10].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    assert images[5, 2, 7, 11] == raw_images[7, 11, 2, 5]  # (H, W, C, N) -> (N, C, H, W)


def test_bad_files_are_explained(small_svhn, tmp_path):
    root, _ = small_svhn
    bad = tmp_path / "bad" / "svhn"
    _write_mat(bad / "test_32x32.mat", 29)
    with pytest.raises(InfoGANError, match="holds 29 images; SVHN's test split has 30"):
        svhn.load_svhn("test", bad.parent, download=False)
    scipy.io.savemat(bad / "train_32x32.mat", {"images": np.zeros(3)})
    with pytest.raises(InfoGANError, match="lacks the variables X and y"):
        svhn.load_svhn("train", bad.parent, download=False)
    (bad / "extra_32x32.mat").write_bytes(b"not matlab")
    with pytest.raises(InfoGANError, match="not a readable MATLAB file"):
        svhn.load_svhn("extra", bad.parent, download=False)
    (bad / "train_32x32.mat").write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + bytes(200))
    with pytest.raises(InfoGANError, match="MATLAB 7.3 file"):
        svhn.load_svhn("train", bad.parent, download=False)
    with pytest.raises(InfoGANError, match="was not found"):
        svhn.load_svhn("train", tmp_path / "nowhere", download=False)


def _tag(mdtype, count):
    return struct.pack("<II", mdtype, count)


def _compressed_matrix(name, dims, data_bytes, zeros):
    """A zlib-compressed MATLAB 5 uint8 matrix whose header gives `dims` and `data_bytes` bytes of
    data, followed by `zeros` zero bytes of data (compressed as they are made)."""
    flags = _tag(6, 8) + struct.pack("<II", 9, 0)  # mxUINT8_CLASS
    dim_element = _tag(5, 4 * len(dims)) + struct.pack(f"<{len(dims)}i", *dims) + bytes(-4 * len(dims) % 8)
    name_element = _tag(1, len(name)) + name + bytes(-len(name) % 8)
    head = flags + dim_element + name_element + _tag(2, data_bytes)  # miUINT8 data
    compressor = zlib.compressobj(6)
    parts = [compressor.compress(_tag(14, min(len(head) + data_bytes, 2**32 - 1)) + head)]
    block = bytes(1024**2)
    for start in range(0, zeros, len(block)):
        parts.append(compressor.compress(block[: min(len(block), zeros - start)]))
    body = b"".join(parts) + compressor.flush()
    return _tag(15, len(body)) + body


def _hostile_mat(path, x_dims, x_bytes, zeros, count):
    header = b"MATLAB 5.0 MAT-file".ljust(116, b" ") + bytes(8) + struct.pack("<H", 0x0100) + b"IM"
    labels = _compressed_matrix(b"y", (count, 1), count, count)
    path.parent.mkdir(parents=True)
    path.write_bytes(header + _compressed_matrix(b"X", x_dims, x_bytes, zeros) + labels)
    return path


def _peak(function):
    tracemalloc.start()
    try:
        function()
    except InfoGANError as exc:
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return None, 0


def test_mat_whose_data_inflates_past_its_shape_is_refused_before_loading(small_svhn, tmp_path):
    # X's header gives SVHN's shape, but its data claims (and inflates to) 50 MB
    path = _hostile_mat(tmp_path / "bomb" / "svhn" / "train_32x32.mat", (32, 32, 3, 60), 50 * 1024**2, 50 * 1024**2, 60)
    assert path.stat().st_size < 200_000
    raised, peak = _peak(lambda: svhn.load_svhn("train", tmp_path / "bomb", download=False))
    assert raised is not None and "X claims 52428800 bytes of data for shape (32, 32, 3, 60)" in str(raised)
    assert peak < 8 * 1024**2


def test_mat_claiming_a_huge_count_is_refused_from_its_header(small_svhn, tmp_path):
    count = 1_000_000  # 3 GB of pixels claimed, none there
    _hostile_mat(tmp_path / "big" / "svhn" / "test_32x32.mat", (32, 32, 3, count), 3072 * count, 0, 30)
    raised, peak = _peak(lambda: svhn.load_svhn("test", tmp_path / "big", download=False))
    assert raised is not None and "holds 1000000 images; SVHN's test split has 30" in str(raised)
    assert peak < 8 * 1024**2


def test_gzipped_mat_is_read_only_up_to_the_size_of_the_split(small_svhn, tmp_path):
    folder = tmp_path / "gz" / "svhn"
    folder.mkdir(parents=True)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"".join(compressor.compress(bytes(1024**2)) for _ in range(20)) + compressor.flush()
    (folder / "train_32x32.mat.gz").write_bytes(zeros)
    raised, peak = _peak(lambda: svhn.load_svhn("train", tmp_path / "gz", download=False))
    assert raised is not None and f"holds more than {svhn.max_file_bytes('train')} bytes" in str(raised)
    assert peak < 8 * 1024**2
    root, (raw_images, _) = small_svhn  # a real file, gzipped, still loads
    (folder / "train_32x32.mat.gz").write_bytes(gzip.compress((root / "svhn" / "train_32x32.mat").read_bytes()))
    images, _ = svhn.load_svhn("train", tmp_path / "gz", download=False)
    assert images[5, 2, 7, 11] == raw_images[7, 11, 2, 5]


def test_compressed_mat_in_svhn_layout_loads(small_svhn, tmp_path):
    root, _ = small_svhn
    images = np.arange(32 * 32 * 3 * 60, dtype=np.uint64).astype(np.uint8).reshape(32, 32, 3, 60)
    labels = (np.arange(60) % 10 + 1).reshape(-1, 1).astype(np.float64)  # SVHN's y is double
    path = tmp_path / "zipped" / "svhn" / "train_32x32.mat"
    path.parent.mkdir(parents=True)
    scipy.io.savemat(path, {"X": images, "y": labels, "other": np.zeros((1000, 1000))}, do_compression=True)
    loaded, loaded_labels = svhn.load_svhn("train", tmp_path / "zipped", download=False)
    assert loaded[5, 2, 7, 11] == images[7, 11, 2, 5] and loaded_labels[:10].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_is_verified_and_cached(small_svhn, tmp_path, monkeypatch):
    root, _ = small_svhn
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root / "svhn")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(svhn, "MIRRORS", (f"http://127.0.0.1:{server.server_address[1]}/",))
        images, _ = svhn.load_svhn("test", tmp_path / "empty")
        assert images.shape == (30, 3, 32, 32)
        assert (tmp_path / "cache" / "infogan" / "svhn" / "test_32x32.mat").is_file()
        with pytest.raises(InfoGANError, match="could not download extra_32x32.mat"):
            svhn.load_svhn("extra", tmp_path / "empty")
    finally:
        server.shutdown()
        server.server_close()


def test_train_and_evaluate_the_svhn_preset(small_svhn, tmp_path, capsys):
    root, _ = small_svhn
    out = tmp_path / "run"
    args = ["train", "--preset", "svhn", "--out", str(out), "--max-steps", "2", "--data-dir", str(root),
            "--device", "cpu", "--set", "optim.batch_size=8", "--set", "logging.tensorboard=false"]  # fmt: skip
    assert main(args) == 0
    assert main(["evaluate", str(out), "--samples", "50", "--data-dir", str(root), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert all(f"c{i}: accuracy" in printed for i in (1, 2, 3, 4))
