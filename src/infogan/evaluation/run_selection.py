"""`select()`: rank saved runs without labels and pick one, as `infogan select` does.

The algorithms are in `infogan.evaluation.selection`; this module reads the runs, checks that
they can be compared, feeds them the same inputs and writes the result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import torch

from infogan.checkpoint import load_model
from infogan.data import data_folder, load_training_images
from infogan.errors import InfoGANError
from infogan.evaluation.selection import (
    Candidate,
    SelectionSizes,
    check_candidates,
    sample_rows,
    select_by_agreement,
    select_models,
    selection_cost,
)
from infogan.fileio import to_stderr, write_output
from infogan.model import InfoGAN

METHODS = ("centrality", "agreement")


def select(
    runs: Sequence[str | Path],
    method: Literal["centrality", "agreement"] = "centrality",
    *,
    sizes: SelectionSizes | None = None,
    seed: int = 0,
    code: str | None = None,
    images: int = 10000,
    data_dir: str | Path | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    log: Callable[[str], None] | None = None,
) -> dict:
    """Rank two or more runs (run directories, export folders or .safetensors files) without
    labels; the result's "selected" is the winner. Written to `out` as JSON when given.

    "centrality": ModelCentrality, the FactorVAE score of each run's Q on each other run's
    generated data (any codes), at `sizes` (default `SelectionSizes(seed=seed)`).
    "agreement": NMI between the runs' assignments of the same `images` unlabelled training
    images (drawn with `seed`) to the values of a categorical `code` (default the first), for
    runs that cluster, read from `data_dir` (else the folder the runs recorded, then as usual).
    `log` receives progress lines (default: standard error).
    """
    log = log or to_stderr
    if method not in METHODS:
        raise InfoGANError(f"method {method!r} is not one of {', '.join(METHODS)}")
    paths = [Path(run) for run in runs]
    if len(paths) < 2:
        raise InfoGANError(f"infogan select compares two or more runs; got {len(paths)}")
    names = [str(path) for path in paths]
    if method == "agreement":
        result = _by_agreement(paths, names, code, images, seed, data_dir, device, log)
    else:
        sizes = sizes or SelectionSizes(seed=seed)
        models = _load_runs(paths, device)
        cost = selection_cost(len(models), sizes)
        log(f"ModelCentrality of {len(models)} runs: {cost['generator']:,} generator and {cost['q']:,} Q forward "
            "passes")
        result = select_models(models, names, sizes, progress=log)
    if out is not None:
        write_output(out, (json.dumps(result, indent=2) + "\n").encode("utf-8"))
    return result


def _by_agreement(paths, names, code, count, seed, data_dir, device, log) -> dict:
    snapshots = [load_model(path) for path in paths]
    data = snapshots[0].config.data
    for path, snapshot in zip(paths, snapshots):
        if (snapshot.config.data.dataset, snapshot.config.data.path) != (data.dataset, data.path):
            raise InfoGANError(
                f"{path} was trained on {snapshot.config.data.dataset} and {paths[0]} on {data.dataset}; "
                "agreement compares runs of one data set"
            )
    data_dir = data_folder(data_dir, _recorded_folder(snapshots))  # one given wins over the runs'
    images = load_training_images(data, snapshots[0].config.model, data_dir)
    rows = sample_rows(len(images), count, seed)
    images = images[rows] if isinstance(images, torch.Tensor) else images.gather(rows)  # dSprites: only these
    models = [InfoGAN.from_snapshot(snapshot, device) for snapshot in snapshots]
    log(f"agreement of {len(models)} runs on {len(images):,} {data.dataset} training images (no labels read)")
    return select_by_agreement(models, images, names, code)


def _recorded_folder(snapshots) -> str:
    """The data folder the runs recorded: the first that is still there (else the first recorded)."""
    folders = [s.config.runtime.data_dir for s in snapshots if s.config.runtime.data_dir]
    return next((folder for folder in folders if Path(folder).is_dir()), folders[0] if folders else "")


def _load_runs(paths: list[Path], device: str) -> list[InfoGAN]:
    """The models of runs to compare; every checkpoint is read and the code layouts compared
    before any model is built (building one recomputes its batch-norm statistics)."""
    snapshots = [load_model(path) for path in paths]
    shapes = [(s.config.model.image_channels, s.config.model.image_size, s.config.model.image_size) for s in snapshots]
    check_candidates(
        [Candidate(str(p), s.config.latent, None, None, shape) for p, s, shape in zip(paths, snapshots, shapes)]
    )
    return [InfoGAN.from_snapshot(snapshot, device) for snapshot in snapshots]
