"""Data sets: IDX files (MNIST, Fashion-MNIST) held in memory as uint8 tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import InfoGANError
from .idx import parse_idx, read_idx
from .sources import IDX_DATASETS, cache_dir, download_file, locate, search_roots


def load_split(
    name: str, split: str = "train", data_dir: str | Path | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 1, H, W), labels int64 (N,)) of one split, verified against checksums."""
    images_path, labels_path = locate(name, split, data_dir, download)
    known = IDX_DATASETS[name].sha256
    images = read_idx(images_path, known[images_path.name.removesuffix(".gz")])
    labels = read_idx(labels_path, known[labels_path.name.removesuffix(".gz")])
    return _as_tensors(images, labels, f"{images_path} and {labels_path}")


def _as_tensors(images: np.ndarray, labels: np.ndarray, source: str) -> tuple[torch.Tensor, torch.Tensor]:
    if images.ndim != 3 or labels.ndim != 1:
        raise InfoGANError(f"{source}: expected (N, H, W) images and (N,) labels")
    if images.shape[0] != labels.shape[0]:
        raise InfoGANError(f"{source}: {images.shape[0]} images but {labels.shape[0]} labels")
    image_tensor = torch.from_numpy(images.copy()).unsqueeze(1)
    return image_tensor, torch.from_numpy(labels.astype(np.int64))


__all__ = [
    "IDX_DATASETS",
    "cache_dir",
    "download_file",
    "load_split",
    "locate",
    "parse_idx",
    "read_idx",
    "search_roots",
]
