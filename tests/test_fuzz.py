"""Fuzz tests over the binary readers: every input either loads or raises InfoGANError, never
another exception, and none makes the process allocate far beyond what the input is worth.

The readers: IDX files (plain and gzip), safetensors checkpoints (header, tensors, metadata),
PNG and JPEG images, config files. Each test draws inputs from a structured strategy (a valid file
with one part changed: a header field, a shape, the metadata's config) as well as raw bytes, since
random bytes alone rarely get past a magic number. The default suite draws the profile's few
hundred examples in all; `--runslow` draws many more (see conftest.py).
"""

from __future__ import annotations

import gzip
import io
import json
import resource
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import infogan
from infogan.config import config_from_dict, read_config_file
from infogan.core.networks import build_networks
from infogan.data.idx import read_idx
from infogan.data.inputs import read_image
from infogan.errors import InfoGANError
from infogan.model import InfoGAN

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MEMORY_BOUND = 1024**3  # bytes the process's peak may grow by over one fuzz test


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


@pytest.fixture
def memory_bound():
    """Fails the test when the process's peak resident memory grew by more than the bound."""
    before = _peak_rss()
    yield
    grown = _peak_rss() - before
    assert grown < MEMORY_BOUND, f"the peak memory grew by {grown / 1024**2:.0f} MB"


def _loads_or_explains(read, *args):
    try:
        return read(*args)
    except InfoGANError as exc:
        assert str(exc), "an InfoGANError must say what is wrong"
        return None


# -- IDX ------------------------------------------------------------------------------------

_dims = st.lists(st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)), min_size=0, max_size=4)


@st.composite
def idx_files(draw) -> bytes:
    """An IDX file whose header fields (zero bytes, type, rank, sizes) and body are drawn."""
    dims = draw(_dims)
    zeros = draw(st.sampled_from([b"\x00\x00", b"\x00\x01", b"\xff\x00"]))
    kind = draw(st.sampled_from([0x08, 0x08, 0x09, 0x0D, 0x00]))
    rank = draw(st.one_of(st.just(len(dims)), st.integers(0, 255)))
    header = zeros + bytes([kind, rank]) + b"".join(struct.pack(">I", d) for d in dims)
    expected = int(np.prod([d for d in dims if d < 64])) if dims else 0
    body = draw(st.one_of(st.binary(max_size=64), st.just(bytes(min(expected, 4096)))))
    return header + body


@FUZZ
@given(data=idx_files(), compress=st.booleans(), cut=st.one_of(st.none(), st.integers(0, 80)))
def test_idx_files_load_or_explain(tmp_path, memory_bound, data, compress, cut):
    payload = gzip.compress(data) if compress else data
    path = tmp_path / "fuzz-idx3-ubyte.gz"
    path.write_bytes(payload[:cut] if cut is not None else payload)
    array = _loads_or_explains(read_idx, path)
    if array is not None:
        assert isinstance(array, np.ndarray) and array.dtype == np.uint8


# -- safetensors checkpoints ----------------------------------------------------------------


@pytest.fixture(scope="module")
def export_bytes(tmp_path_factory) -> bytes:
    """A small valid export (the conv family at width 8) to change one part of."""
    config = config_from_dict({"model": {"architecture": "conv", "width": 8, "image_size": 32}})
    model = InfoGAN(config, *build_networks(config.model, config.latent), calibrate=False)
    folder = model.export(tmp_path_factory.mktemp("export"))
    return (folder / "model.safetensors").read_bytes()


def _split(payload: bytes) -> tuple[dict, bytes]:
    size = int.from_bytes(payload[:8], "little")
    return json.loads(payload[8 : 8 + size]), payload[8 + size :]


def _join(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + body


_numbers = st.one_of(
    st.integers(-3, 3),
    st.integers(0, 10**9),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.text(max_size=3),
)
_config_keys = st.sampled_from(
    [
        "latent.noise_dim",
        "latent.categorical",
        "latent.continuous",
        "model.image_size",
        "model.image_channels",
        "model.width",
        "model.architecture",
        "optim.batch_size",
        "seed",
    ]
)


_tensor_changes = st.one_of(
    st.tuples(st.just("shape"), st.lists(st.one_of(st.integers(0, 8), st.integers(0, 2**40)), max_size=5)),
    st.tuples(st.just("dtype"), st.sampled_from(["F32", "F16", "BF16", "I64", "U8", "F64", "BOOL", "X9"])),
    st.tuples(st.just("data_offsets"), st.lists(st.integers(-1, 2**40), max_size=3)),
    st.tuples(st.just("drop"), st.none()),
)
_meta_changes = st.tuples(
    _config_keys,
    _numbers,
    st.one_of(st.none(), st.tuples(st.sampled_from(["step", "kind", "version", "format"]), _numbers)),
)
_changes = st.one_of(
    st.tuples(st.just("tensor"), st.integers(0, 10**6), _tensor_changes),
    st.tuples(st.just("config"), _meta_changes),
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
)


def _change_tensor(header: dict, pick: int, change: tuple) -> None:
    names = sorted(k for k in header if k != "__metadata__")
    name = names[pick % len(names)]
    field, value = change
    if field == "drop":
        del header[name]
    else:
        header[name][field] = value


def _change_meta(header: dict, change: tuple) -> None:
    key, value, other = change
    meta = json.loads(header["__metadata__"]["infogan"])
    section, name = key.rpartition(".")[::2]
    (meta["config"][section] if section else meta["config"])[name] = value
    if other is not None:
        meta[other[0]] = other[1]
    header["__metadata__"]["infogan"] = json.dumps(meta)


def changed_checkpoint(payload: bytes, change: tuple) -> bytes:
    """The export with one part changed: a tensor's header entry, the metadata, a byte of the
    header, or its tail cut off. `change` is a small drawn description, so a failure prints short."""
    header, body = _split(payload)
    how = change[0]
    if how == "tensor":
        _change_tensor(header, change[1], change[2])
    elif how == "config":
        _change_meta(header, change[1])
    result = _join(header, body)
    if how == "flip":
        at = change[1] % (8 + int.from_bytes(payload[:8], "little"))
        result = result[:at] + bytes([result[at] ^ change[2]]) + result[at + 1 :]
    elif how == "truncate":
        result = result[: int(change[1] * len(result))]
    return result


@FUZZ
@given(change=_changes)
def test_checkpoints_load_or_explain(tmp_path, memory_bound, export_bytes, change):
    path = tmp_path / "model.safetensors"
    path.write_bytes(changed_checkpoint(export_bytes, change))
    model = _loads_or_explains(infogan.load, path)
    if model is not None:
        assert isinstance(model, InfoGAN)


# -- PNG and JPEG ---------------------------------------------------------------------------


def _encoded(kind: str) -> bytes:
    pixels = (np.arange(28 * 28, dtype=np.uint8).reshape(28, 28) * 7) % 251
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=kind)
    return buffer.getvalue()


@st.composite
def changed_images(draw) -> bytes:
    """A valid PNG or JPEG with some bytes changed, bytes inserted, or its tail cut off."""
    data = bytearray(_encoded(draw(st.sampled_from(["PNG", "JPEG"]))))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["set", "insert", "cut"]))
        if how == "set":
            data[at] = draw(st.integers(0, 255))
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
        else:
            del data[at:]
            break
    return bytes(data)


@FUZZ
@given(payload=st.one_of(changed_images(), st.binary(max_size=64)), suffix=st.sampled_from([".png", ".jpg"]))
def test_images_load_or_explain(tmp_path, memory_bound, payload, suffix):
    path = tmp_path / f"image{suffix}"
    path.write_bytes(payload)
    array = _loads_or_explains(read_image, path, 1, 28)
    if array is not None:
        assert array.shape == (1, 28, 28) and array.dtype == np.uint8


# -- config files ---------------------------------------------------------------------------

_plain = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=6)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_sections = st.dictionaries(
    st.sampled_from(["optim", "latent", "data", "model", "loss", "logging", "runtime", "seed", "x"]),
    st.dictionaries(st.sampled_from(["steps", "noise_dim", "categorical", "image_size", "lr_d", "y"]), _plain)
    | _plain,
    max_size=3,
)


def _as_text(data: dict, suffix: str) -> str:
    if suffix == ".json":
        return json.dumps(data)
    import yaml

    return yaml.safe_dump(data)


@FUZZ
@given(data=_sections, suffix=st.sampled_from([".json", ".yaml"]))
def test_config_files_load_or_explain(tmp_path, memory_bound, data, suffix):
    path = tmp_path / f"config{suffix}"
    path.write_text(_as_text(data, suffix), encoding="utf-8")
    config = _loads_or_explains(lambda p: config_from_dict(read_config_file(p)), path)
    if config is not None:
        assert config.latent.noise_dim >= 1


def test_an_empty_idx_array_with_absurd_sides_is_refused(tmp_path):
    """Found by the IDX fuzz test: a zero side with sides whose product no array can have."""
    path = tmp_path / "empty-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 4]) + b"".join(struct.pack(">I", d) for d in (0, 882, 0x06183DFC, 0x06188511)))
    with pytest.raises(InfoGANError, match="more than the"):
        read_idx(path)
