"""Sample grids: `save_samples()`, what `infogan sample` writes."""

from __future__ import annotations

from pathlib import Path

import torch

from infogan.fileio import check_output_folder
from infogan.model import InfoGAN, load
from infogan.viz.figures import check_grid_size, check_still_image, grid, save_image_atomically


def save_samples(
    model: InfoGAN | str | Path,
    out: str | Path,
    *,
    count: int = 64,
    columns: int = 8,
    codes: dict[str, float | int] | None = None,
    seed: int = 0,
    device: str = "auto",
) -> torch.Tensor:
    """Write a grid of `count` generated images, `columns` to a row, to `out` (.png or .jpg) and
    return the images (floats in [0, 1], (N, C, H, W)); the same as `infogan sample`.

    `model` is an `InfoGAN`, or a run directory, export folder, .safetensors file or shipped
    model's name, loaded onto `device`. `codes` fixes codes for every image, e.g. {"c1": 7,
    "c2": 1.5}; the rest are drawn with `seed`. The size of the grid (at most 4,096 images), the
    format and the folder of `out` are checked before the model is loaded.
    """
    out = Path(out)
    check_grid_size(count, "-n")
    check_still_image(out)
    check_output_folder(out)
    loaded = model if isinstance(model, InfoGAN) else load(model, device)
    images = loaded.generate(count, codes, seed=seed)
    save_image_atomically(grid(images, columns), out)
    return images
