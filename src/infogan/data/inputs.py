"""Reading user images (PNG/JPEG files or an IDX file) into a uint8 tensor for a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from infogan.data.folder import IMAGE_SUFFIXES, ImageTooLargeError, UnreadableImageError, read_square_image
from infogan.data.idx import read_idx
from infogan.errors import InfoGANError


def is_idx(path: Path) -> bool:
    return "idx" in path.name and path.suffix.lower() not in IMAGE_SUFFIXES


def read_image(path: Path, channels: int, size: int) -> np.ndarray:
    """One image file (PNG or JPEG) as uint8 (channels, size, size), prepared as for training; a
    file in another format, damaged or over `pixel_limit(size)` pixels is an InfoGANError."""
    try:
        return read_square_image(path, channels, size)
    except FileNotFoundError:
        raise InfoGANError(f"image {path} does not exist") from None
    except ImageTooLargeError as exc:
        raise InfoGANError(f"{exc}; give a smaller image (resize it)") from None
    except UnreadableImageError as exc:
        raise InfoGANError(str(exc)) from None


def read_inputs(paths: list[str | Path], channels: int, size: int) -> tuple[torch.Tensor, list[str]]:
    """Images from files and IDX files as uint8 (N, C, H, W), with a source name per image."""
    arrays, sources = [], []
    for raw in paths:
        path = Path(raw)
        if is_idx(path):
            images = read_idx(path, image_shape=(channels, size, size))  # shape checked before the body is read
            arrays.append(images.reshape(len(images), channels, size, size))
            sources += [f"{path.name}[{i}]" for i in range(len(images))]
        else:
            arrays.append(read_image(path, channels, size)[None])
            sources.append(str(path))
    if not arrays:
        raise InfoGANError("no input images given")
    return torch.from_numpy(np.concatenate(arrays)), sources
