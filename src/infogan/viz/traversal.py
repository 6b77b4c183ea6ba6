"""Traversal figures: each code varied along the columns, the others fixed (the paper's Fig. 2),
as still panels, labelled rows or an animated GIF."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from infogan.core.latent import check_sweep, code_rows_latents, traversal_latents
from infogan.errors import InfoGANError
from infogan.evaluation.labels import CodeLabel, RunLabels, read_labels
from infogan.fileio import check_output_folder
from infogan.model import InfoGAN, load
from infogan.viz.figures import (
    Sweep,
    grid,
    labelled_rows,
    save_animation,
    save_image_atomically,
    save_pil_atomically,
    stack_panels,
    traversal_frames,
)

SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")
MAX_ROWS = 64  # random draws of a panel: with MAX_STEPS columns, a grid of 2,048 images
MAX_FRAME_MS = 60_000  # a GIF frame shown a minute; the format stores at most 655 s


def save_traversal(
    model: InfoGAN | str | Path,
    out: str | Path,
    *,
    code: str | None = None,
    value_range: tuple[float, float] = (-2.0, 2.0),
    steps: int = 10,
    rows: int = 10,
    frame_ms: int = 150,
    layout: Literal["panels", "rows"] = "panels",
    seed: int = 0,
    labels: RunLabels | None = None,
    device: str = "auto",
) -> list[str]:
    """Write a traversal of `code` (default: every code) to `out` and return the codes drawn;
    the same as `infogan traverse`.

    `model` is an `InfoGAN`, or a run directory, export folder, .safetensors file or shipped
    model's name, loaded onto `device` (its codes then titled from the evaluation.json beside
    it, as the command does).
    "panels": one panel per code, `rows` random draws by `steps` values (categorical codes:
    their values); a .gif sweeps each code back and forth. "rows" (PNG/JPEG): one row per code,
    every row from the same draw, each titled by `labels` (default: those of the evaluation.json
    beside a model given by its path, else plain code names; see `infogan.evaluation.labels`).
    Everything is checked before an image is made: `value_range` and `steps` by the rule the
    explorer uses (`infogan.core.latent.check_sweep`), `rows` up to MAX_ROWS, `frame_ms` up to
    MAX_FRAME_MS, and the folder of `out` must exist.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise InfoGANError(f"--out {out} must end in .png, .jpg, .jpeg or .gif")
    _check_sizes(value_range, steps, rows, frame_ms)
    check_output_folder(out)
    given, model = model, model if isinstance(model, InfoGAN) else load(model, device)
    labels = labels or _labels(given, model)
    names = [code] if code else model.spec.code_names
    if not names:
        raise InfoGANError("this model has no latent codes to traverse")
    if layout == "rows":
        return _rows(model, out, code, value_range, steps, seed, labels)
    sweeps = []
    for name in names:
        rng = torch.Generator().manual_seed(seed)
        latent, columns = traversal_latents(model.spec, name, steps, rows, tuple(value_range), rng)
        sweeps.append((name, model.generate_from(latent), columns))
    if suffix == ".gif":
        panels = [_sweep(model, labels.codes[n], images, c, value_range) for n, images, c in sweeps]
        save_animation(traversal_frames(panels), out, frame_ms)
    else:
        save_image_atomically(stack_panels([grid(images, columns) for _, images, columns in sweeps]), out)
    return names


def _labels(given: InfoGAN | str | Path, model: InfoGAN) -> RunLabels:
    """Titles from the evaluation.json beside a model given by its path; else plain code names."""
    if isinstance(given, InfoGAN):
        return RunLabels({name: CodeLabel(name) for name in model.spec.code_names})
    return read_labels(given, model.spec, model.config.data.dataset, model.step)


def _check_sizes(value_range, steps: int, rows: int, frame_ms: int) -> None:
    check_sweep(tuple(value_range), steps)
    for name, value, most in (("rows", rows, MAX_ROWS), ("frame_ms (--frame-ms)", frame_ms, MAX_FRAME_MS)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            got = f"{value:,}" if isinstance(value, int) else repr(value)
            raise InfoGANError(f"{name} must be a whole number from 1 to {most:,}; got {got}")


def _rows(model, out: Path, code, value_range, steps: int, seed: int, labels: RunLabels) -> list[str]:
    """One row per code, every row from the same draw, titled by its label."""
    if out.suffix.lower() == ".gif":
        raise InfoGANError("--layout rows makes a still image; write a .png or .jpg")
    rng = torch.Generator().manual_seed(seed)
    rows = code_rows_latents(model.spec, steps, tuple(value_range), rng)
    if code:
        rows = [(name, latent) for name, latent in rows if name == code]
    figure = labelled_rows([(labels.codes[name].title, model.generate_from(latent)) for name, latent in rows])
    save_pil_atomically(figure, out)
    return [name for name, _ in rows]


def _sweep(model: InfoGAN, label: CodeLabel, images: torch.Tensor, columns: int, value_range) -> Sweep:
    if model.spec.locate(label.name)[0] == "categorical":
        captions = tuple(label.value_title(j) for j in range(columns))
    else:
        captions = tuple(f"{v:.2f}" for v in np.linspace(value_range[0], value_range[1], columns))
    return Sweep(label.title, images, columns, captions)
