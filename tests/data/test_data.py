import functools
import gzip
import http.server
import shutil
import threading
from pathlib import Path

import pytest
import torch

from infogan.data import load_split, parse_idx, read_idx, sources
from infogan.errors import InfoGANError


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No data anywhere but where a test puts it: empty cache, no env var, no Debian folder."""
    monkeypatch.delenv("INFOGAN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "DEBIAN_ROOT", tmp_path / "debian")
    return tmp_path


def test_real_test_split_loads_and_verifies(mnist_test):
    images, labels = mnist_test
    assert images.shape == (10000, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10000,) and set(labels.tolist()) == set(range(10))
    assert torch.bincount(labels).min() > 850


def test_lookup_order_and_layouts(isolated, data_dir, monkeypatch):
    flat = isolated / "flat"
    flat.mkdir()
    for name in sources.SPLIT_FILES["test"]:  # uncompressed, directly in the root
        (flat / name).write_bytes(gzip.decompress((data_dir / "mnist" / f"{name}.gz").read_bytes()))
    images, _ = load_split("mnist", "test", flat, download=False)
    assert images.shape[0] == 10000
    monkeypatch.setenv("INFOGAN_DATA_DIR", str(data_dir))
    found, _ = sources.locate("mnist", "test", download=False)
    assert found == data_dir / "mnist" / "t10k-images-idx3-ubyte.gz"
    explicit, _ = sources.locate("mnist", "test", flat, download=False)
    assert explicit == flat / "t10k-images-idx3-ubyte"


def test_missing_files_say_where_to_put_them(isolated, monkeypatch):
    with pytest.raises(InfoGANError) as info:
        load_split("mnist", "test", isolated / "nowhere", download=False)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte" in message and "INFOGAN_DATA_DIR" in message
    cache = isolated / "cache" / "infogan"
    for root in (isolated / "nowhere", cache, isolated / "debian"):  # every folder looked in
        assert f"{root / 'mnist'}/ and {root}/" in message
    assert f"--data-dir: {isolated / 'nowhere'}\n" in message and "INFOGAN_DATA_DIR: not set\n" in message
    assert f"With internet access they are downloaded into {cache / 'mnist'}/" in message
    monkeypatch.setenv("INFOGAN_DATA_DIR", str(isolated / "env"))
    with pytest.raises(InfoGANError) as info:
        load_split("mnist", "test", download=False)
    message = str(info.value)
    assert "--data-dir: not given\n" in message and f"INFOGAN_DATA_DIR: set to {isolated / 'env'}\n" in message
    assert f"{isolated / 'env' / 'mnist'}/ and {isolated / 'env'}/  (INFOGAN_DATA_DIR)" in message


def _copy_split(data_dir: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for name in sources.SPLIT_FILES["test"]:
        shutil.copy(data_dir / "mnist" / f"{name}.gz", target / f"{name}.gz")
    return target


def test_damaged_gzip_is_reported(isolated, data_dir):
    folder = _copy_split(data_dir, isolated / "d" / "mnist")
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(InfoGANError, match="damaged gzip"):
        load_split("mnist", "test", isolated / "d", download=False)


def test_wrong_contents_fail_the_checksum(isolated, data_dir):
    folder = _copy_split(data_dir, isolated / "d" / "mnist")
    path = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(InfoGANError, match="wrong contents"):
        load_split("mnist", "test", isolated / "d", download=False)


def test_idx_parser_checks_magic_and_sizes():
    good = bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(range(6))
    assert parse_idx(good).tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(InfoGANError, match="bad magic"):
        parse_idx(b"PK\x03\x04" + good[4:])
    with pytest.raises(InfoGANError, match="truncated"):
        parse_idx(good[:-1])
    with pytest.raises(InfoGANError, match="longer than its header"):
        parse_idx(good + b"\x00")
    with pytest.raises(InfoGANError, match="does not handle"):
        parse_idx(bytes([0, 0, 0x0D, 1]) + (1).to_bytes(4, "big") + bytes(4))
    with pytest.raises(InfoGANError, match="truncated inside its header"):
        parse_idx(good[:6])


def test_unreadable_path(tmp_path):
    with pytest.raises(InfoGANError, match="cannot read"):
        read_idx(tmp_path / "absent-idx3-ubyte")


@pytest.fixture
def mirror(data_dir, tmp_path):
    """Two local HTTP mirrors on 127.0.0.1: one serving wrong files, one serving the real ones."""
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in sources.SPLIT_FILES["test"]:
        (bad / f"{name}.gz").write_bytes(gzip.compress(b"not mnist"))
    servers = []
    for folder in (bad, data_dir / "mnist"):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield [f"http://127.0.0.1:{s.server_address[1]}/" for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_falls_through_to_a_good_mirror_and_verifies(isolated, mirror):
    images_path, labels_path = sources.locate("mnist", "test", isolated / "empty", mirrors=mirror)
    cache = isolated / "cache" / "infogan" / "mnist"
    assert images_path == cache / "t10k-images-idx3-ubyte.gz" and labels_path.parent == cache
    images = read_idx(images_path, sources.IDX_DATASETS["mnist"].sha256["t10k-images-idx3-ubyte"])
    assert images.shape == (10000, 28, 28)
    assert sorted(p.name for p in cache.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_failed_download_leaves_nothing_and_explains(isolated, mirror):
    with pytest.raises(InfoGANError) as info:
        sources.locate("mnist", "test", isolated / "empty", mirrors=[mirror[0], "http://127.0.0.1:9/"])
    message = str(info.value)
    assert "wrong contents" in message and "was not found" in message
    cache = isolated / "cache" / "infogan" / "mnist"
    assert not cache.exists() or not any(cache.iterdir())


def test_fashion_mnist_loads_and_trains_with_its_preset(data_dir):
    from infogan.config import resolve_config
    from infogan.training.loop import Trainer

    images, labels = load_split("fashion-mnist", "test", data_dir, download=False)
    assert images.shape == (10000, 1, 28, 28) and torch.bincount(labels).tolist() == [1000] * 10
    config = resolve_config("fashion-mnist", None, ["optim.steps=2", "optim.batch_size=16"])
    assert config.data.dataset == "fashion-mnist" and config.model.architecture == "mnist"
    trainer = Trainer(config, images[:256])
    trainer.fit()
    assert trainer.step == 2


# -- issue 30: where data is read from ---------------------------------------------------------


def test_wrong_shaped_idx_is_refused_from_its_header_before_its_body_is_inflated(tmp_path):
    # issue 30 defect 12: a header of (20000000, 5, 5) given to a 28x28 model is refused from the
    # header alone: its body (here 8 MB of zeros in a few KB of gzip) is never decompressed
    import tracemalloc
    import zlib

    from infogan.data.inputs import read_inputs

    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (20_000_000, 5, 5))
    parts = [compressor.compress(header), *(compressor.compress(bytes(1024**2)) for _ in range(8))]
    path = tmp_path / "odd-idx3-ubyte.gz"
    path.write_bytes(b"".join(parts) + compressor.flush())
    tracemalloc.start()
    try:
        with pytest.raises(InfoGANError) as info:
            read_inputs([path], 1, 28)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert str(path) in message and "(20000000, 5, 5)" in message and "1x28x28" in message
    assert peak < 1024**2  # the 8 MB body was never read
    with pytest.raises(InfoGANError, match="this model takes 3x28x28"):  # an IDX file holds grey images
        read_inputs([path], 3, 28)


def test_the_other_data_sets_file_is_named_and_not_called_damaged(isolated, data_dir):
    # issue 30 defect 17: --data-dir at Fashion-MNIST's folder for an MNIST run names the file
    # for what it is, and does not advise deleting a valid file
    with pytest.raises(InfoGANError) as info:
        load_split("mnist", "test", data_dir / "fashion-mnist", download=False)
    message = str(info.value)
    assert str(data_dir / "fashion-mnist" / "t10k-images-idx3-ubyte.gz") in message
    assert "is Fashion-MNIST's test images file, not MNIST's" in message
    assert "--data-dir" in message and "--preset fashion-mnist" in message
    assert "delete" not in message and "damaged" not in message
    with pytest.raises(InfoGANError, match="is MNIST's test labels file, not Fashion-MNIST's"):
        read_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz",
                 sources.IDX_DATASETS["fashion-mnist"].sha256["t10k-labels-idx1-ubyte"])  # fmt: skip


def test_a_data_dir_that_is_a_file_is_called_a_file(isolated, data_dir, monkeypatch):
    # issue 30 defect 18: say plainly that the path is a file, and which folder to give instead
    given = data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    with pytest.raises(InfoGANError) as info:
        load_split("mnist", "test", given, download=False)
    message = str(info.value)
    assert message.startswith(f"--data-dir {given} is a file, not a folder; give the folder that holds it: ")
    assert message.endswith(f"--data-dir {data_dir / 'mnist'}") and "Looked in" not in message
    monkeypatch.setenv("INFOGAN_DATA_DIR", str(given))
    with pytest.raises(InfoGANError, match=f"INFOGAN_DATA_DIR {given} is a file, not a folder"):
        load_split("mnist", "test", download=False)


def test_a_runs_recorded_folder_is_searched_first_and_named_as_the_runs(isolated, data_dir):
    folder = sources.data_folder(None, str(data_dir))  # what the commands that read a run pass
    assert sources.locate("mnist", "test", folder, download=False)[0].parent == data_dir / "mnist"
    assert sources.data_folder(isolated / "given", str(data_dir)) == isolated / "given"  # one given wins
    gone = isolated / "gone"
    with pytest.raises(InfoGANError) as info:
        load_split("mnist", "test", sources.data_folder(None, str(gone)), download=False)
    message = str(info.value)
    assert f"{gone / 'mnist'}/ and {gone}/  (the run's data folder)" in message
    assert f"--data-dir: not given\nthe run's data folder (recorded when it trained): {gone}\n" in message
