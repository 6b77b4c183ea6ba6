"""Helpers the tests share (fixtures live in conftest.py)."""

import json

from safetensors import safe_open
from safetensors.torch import save_file

from infogan.config import config_from_dict


def tiny_config(**overrides):
    """The MNIST preset shrunk to a few cheap steps."""
    data = {
        "optim": {"batch_size": 16, "steps": 4},
        "logging": {"log_every": 2, "image_every": 2, "checkpoint_every": 2, "tensorboard": False},
    }
    config = config_from_dict(data)
    return config.replace(**overrides) if overrides else config


def rewrite_checkpoint(source, target, edit_meta=None, edit_tensors=None):
    """A copy of a checkpoint with its metadata and/or tensors changed in place by the two
    functions: a checkpoint no infogan writes, for the tests that it is refused."""
    with safe_open(str(source), framework="pt") as handle:
        meta = json.loads(handle.metadata()["infogan"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    if edit_meta:
        edit_meta(meta)
    if edit_tensors:
        edit_tensors(tensors)
    save_file(tensors, str(target), metadata={"infogan": json.dumps(meta)})
