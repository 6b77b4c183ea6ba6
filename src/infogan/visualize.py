"""Image grids: sample grids, traversal grids (paper Fig. 2 style) and stacked panels."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from .errors import InfoGANError
from .fileio import atomic_write


def to_unit_range(images: torch.Tensor, image_range: tuple[float, float]) -> torch.Tensor:
    """Generator output in `image_range` mapped to [0, 1] for saving or returning."""
    low, high = image_range
    return ((images - low) / (high - low)).clamp(0, 1)


def grid(images: torch.Tensor, columns: int, padding: int = 2) -> torch.Tensor:
    """One (C, H, W) image in [0, 1] laying `images` (N, C, h, w) out in rows of `columns`."""
    return make_grid(images, nrow=columns, padding=padding, pad_value=1.0)


def stack_panels(panels: list[torch.Tensor], gap: int = 8) -> torch.Tensor:
    """Panels (C, H_i, W_i) one above another on a white background, left-aligned."""
    width = max(p.shape[2] for p in panels)
    height = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    canvas = torch.ones(panels[0].shape[0], height, width)
    top = 0
    for panel in panels:
        canvas[:, top : top + panel.shape[1], : panel.shape[2]] = panel
        top += panel.shape[1] + gap
    return canvas


def save_image_atomically(image: torch.Tensor, path: str | Path) -> None:
    """Write a (C, H, W) image in [0, 1]; the file appears complete or not at all."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("png", "jpg", "jpeg"):
        raise InfoGANError(f"output {path} must end in .png, .jpg or .jpeg")
    try:
        with atomic_write(path) as tmp:
            save_image(image, tmp, format="jpeg" if fmt == "jpg" else fmt)
    except OSError as exc:
        raise InfoGANError(f"cannot write {path}: {exc.strerror or exc}") from None


def save_grid(images: torch.Tensor, path: str | Path, columns: int) -> None:
    """Save `images` (N, C, h, w) in [0, 1] as one grid image."""
    save_image_atomically(grid(images, columns), path)
