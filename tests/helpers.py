"""Helpers the tests share (fixtures live in conftest.py)."""

from infogan.config import config_from_dict


def tiny_config(**overrides):
    """The MNIST preset shrunk to a few cheap steps."""
    data = {
        "optim": {"batch_size": 16, "steps": 4},
        "logging": {"log_every": 2, "image_every": 2, "checkpoint_every": 2, "tensorboard": False},
    }
    config = config_from_dict(data)
    return config.replace(**overrides) if overrides else config
