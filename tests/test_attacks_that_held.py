"""Attacks the second outside fault test tried that held, kept as fast tests so none comes back.

The defects it found are tested beside the code they concern (docs/reliability.md lists each
fault with its test); the explorer's held attacks are in tests/explore/test_explore_attacks.py.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from PIL import Image

import infogan
from infogan.config import config_from_dict
from infogan.core.networks import build_networks
from infogan.data.folder import load_image_folder
from infogan.errors import InfoGANError
from infogan.model import InfoGAN


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A small valid export (the conv family at width 8), as bytes: header (parsed) and body."""
    config = config_from_dict({"model": {"architecture": "conv", "width": 8, "image_size": 32}})
    model = InfoGAN(config, *build_networks(config.model, config.latent), calibrate=False)
    payload = (model.export(tmp_path_factory.mktemp("export")) / "model.safetensors").read_bytes()
    size = int.from_bytes(payload[:8], "little")
    return json.loads(payload[8 : 8 + size]), payload[8 + size :]


def _write(path, header: dict, body: bytes, declared: int | None = None) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if declared is None else declared) + raw + body)


def _first_weight(header: dict) -> str:
    return next(name for name, entry in header.items() if name != "__metadata__" and entry["dtype"] == "F32")


@pytest.mark.parametrize("declared", [2**63, 2**40, 10**6])
def test_a_safetensors_header_longer_than_the_file_is_refused(export, tmp_path, declared):
    header, body = export
    path = tmp_path / "model.safetensors"
    _write(path, header, body, declared)
    with pytest.raises(InfoGANError, match="not a readable safetensors file"):
        infogan.load(path)


@pytest.mark.parametrize(
    "lie",
    [
        {"data_offsets": [0, 2**40]},  # past the end of the file
        {"data_offsets": [16, 8]},  # backwards
        {"shape": [2**31, 2**31]},  # more elements than bytes
        {"dtype": "F64"},  # another size per element than the bytes given
    ],
)
def test_a_tensor_entry_that_lies_about_its_bytes_is_refused(export, tmp_path, lie):
    header, body = export
    header = json.loads(json.dumps(header))
    header[_first_weight(header)].update(lie)
    path = tmp_path / "model.safetensors"
    _write(path, header, body)
    with pytest.raises(InfoGANError):
        infogan.load(path)


def test_a_symlink_loop_in_an_image_folder_is_not_followed(tmp_path):
    folder = tmp_path / "images" / "digits"
    folder.mkdir(parents=True)
    for index in range(3):
        Image.fromarray(np.full((32, 32), 40 * index, dtype=np.uint8)).save(folder / f"{index}.png")
    (folder / "up").symlink_to("..", target_is_directory=True)  # digits/up/digits/up/... for ever
    (tmp_path / "images" / "again").symlink_to(folder, target_is_directory=True)
    images = load_image_folder(tmp_path / "images", channels=1, size=32)
    assert images.shape == (3, 1, 32, 32)
