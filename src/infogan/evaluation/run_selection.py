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
    check_memory,
    check_same_codes,
    sample_rows,
    select_by_agreement,
    select_models,
    selection_cost,
)
from infogan.fileio import check_output_folder, to_stderr, write_output
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
    """Rank two or more runs (run directories, export folders, .safetensors files or shipped
    models' names) without
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
    if out is not None:
        check_output_folder(out)  # before minutes of work
    paths = [Path(run) for run in runs]
    if len(paths) < 2:
        raise InfoGANError(f"infogan select compares two or more runs; got {len(paths)}")
    names = [str(path) for path in paths]
    if method == "agreement":
        result = _by_agreement(paths, names, code, images, seed, data_dir, device, log)
    else:
        sizes = sizes or SelectionSizes(seed=seed)
        models = _load_runs(paths, device, sizes)
        cost = selection_cost(len(models), sizes)
        log(f"ModelCentrality of {len(models)} runs: {cost['generator']:,} generator and {cost['q']:,} Q forward "
            "passes")
        result = select_models(models, names, sizes, progress=log)
    if out is not None:
        write_output(out, (json.dumps(result, indent=2) + "\n").encode("utf-8"))
    return result


def _by_agreement(paths, names, code, count, seed, data_dir, device, log) -> dict:
    snapshots = [load_model(path) for path in paths]
    check_comparable(paths, snapshots)
    data = snapshots[0].config.data
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


def check_comparable(paths: Sequence[Path], snapshots: Sequence) -> None:
    """Refuse (InfoGANError) runs trained on different data (data set, or image folder), making
    images of different shapes, or with different codes, naming the first two that differ:
    every method ranks runs of one setting."""
    first = snapshots[0].config
    for path, snapshot in zip(paths[1:], snapshots[1:]):
        config = snapshot.config
        if _data_name(config) != _data_name(first):
            raise InfoGANError(
                f"{path} was trained on {_data_name(config)} and {paths[0]} on {_data_name(first)}; "
                "selection ranks runs of one data set"
            )
        if _shape(config) != _shape(first):
            raise InfoGANError(
                f"{path} makes {_shape(config)} images and {paths[0]} {_shape(first)}; "
                "selection ranks runs that make images of one shape"
            )
    check_same_codes([str(path) for path in paths], [snapshot.config.latent for snapshot in snapshots])


def _data_name(config) -> str:
    data = config.data
    return f"the image folder {data.path}" if data.dataset == "folder" else data.dataset


def _shape(config) -> str:
    model = config.model
    return f"{model.image_channels}x{model.image_size}x{model.image_size}"


def _load_runs(paths: list[Path], device: str, sizes: SelectionSizes) -> list[InfoGAN]:
    """The models of runs to compare; every checkpoint is read, the runs compared and the
    memory the sizes need estimated before any model is built (building one recomputes its
    batch-norm statistics)."""
    snapshots = [load_model(path) for path in paths]
    check_comparable(paths, snapshots)
    shapes = [(s.config.model.image_channels, s.config.model.image_size, s.config.model.image_size) for s in snapshots]
    check_candidates(
        [Candidate(str(p), s.config.latent, None, None, shape) for p, s, shape in zip(paths, snapshots, shapes)]
    )
    check_memory(len(snapshots), snapshots[0].config.latent, sizes)
    return [InfoGAN.from_snapshot(snapshot, device) for snapshot in snapshots]
