"""Shared fixtures: slices of the real MNIST files in ../shared/data (or $INFOGAN_DATA_DIR)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from infogan.data import load_split

REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run the slow tests (full training runs)")


def pytest_configure(config):
    """A pytest-xdist worker runs one torch thread, and so do the processes its tests start:
    as many workers as cores, rather than cores x cores threads that slow small networks
    manyfold."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
    # Property tests that name no example count draw 100 each in the default suite, 2,000 under --runslow.
    settings.register_profile("suite", max_examples=100)
    settings.register_profile("thorough", max_examples=2000)
    settings.load_profile("thorough" if config.getoption("--runslow") else "suite")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow; run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module", autouse=True)
def module_temp_folders_removed(request, tmp_path_factory):
    """Delete the temp folders a module made once its tests pass: a run of the paper's networks
    writes 160 MB checkpoints, and pytest would otherwise keep every module's runs to the end.
    Folders named session-* are shared by several modules and stay. (Each test's own tmp_path
    goes by the retention policy in pyproject.toml.)"""
    base = tmp_path_factory.getbasetemp()
    before = set(base.iterdir())
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed == failed_before:
        for path in set(base.iterdir()) - before:
            if not path.name.startswith("session-"):
                shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding mnist/ and fashion-mnist/ IDX files."""
    candidates = [os.environ.get("INFOGAN_DATA_DIR"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    pytest.fail("MNIST files not found: set INFOGAN_DATA_DIR to a folder holding mnist/ (e.g. ../shared/data)")


@pytest.fixture(scope="session")
def mnist_train(data_dir) -> tuple[torch.Tensor, torch.Tensor]:
    return load_split("mnist", "train", data_dir, download=False)


@pytest.fixture(scope="session")
def mnist_test(data_dir) -> tuple[torch.Tensor, torch.Tensor]:
    return load_split("mnist", "test", data_dir, download=False)


@pytest.fixture(scope="session")
def train_slice(mnist_train) -> torch.Tensor:
    return mnist_train[0][:512]


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module: on a busy 2-core machine two threads slow small
    networks manyfold."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
