"""SVHN from .mat files in its layout, made by the tests (the real files are not on this machine)."""

import functools
import http.server
import threading

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
