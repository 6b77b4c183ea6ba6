"""Reading user images (PNG/JPEG files or an IDX file) into a uint8 tensor for a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .data.idx import read_idx
from .errors import InfoGANError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def is_idx(path: Path) -> bool:
    return "idx" in path.name and path.suffix not in IMAGE_SUFFIXES


def read_image(path: Path, channels: int, size: int) -> np.ndarray:
    """One image file as uint8 (channels, size, size), converted and resized as needed."""
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise InfoGANError(f"image {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InfoGANError(f"cannot read {path} as an image ({exc}); give PNG or JPEG files") from None
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def read_inputs(paths: list[str | Path], channels: int, size: int) -> tuple[torch.Tensor, list[str]]:
    """Images from files and IDX files as uint8 (N, C, H, W), with a source name per image."""
    arrays, sources = [], []
    for raw in paths:
        path = Path(raw)
        if is_idx(path):
            images = read_idx(path)
            if images.ndim != 3 or images.shape[1:] != (size, size) or channels != 1:
                raise InfoGANError(
                    f"{path} holds data of shape {images.shape}; this model takes {channels}x{size}x{size} images"
                )
            arrays.append(images[:, None])
            sources += [f"{path.name}[{i}]" for i in range(len(images))]
        else:
            arrays.append(read_image(path, channels, size)[None])
            sources.append(str(path))
    if not arrays:
        raise InfoGANError("no input images given")
    return torch.from_numpy(np.concatenate(arrays)), sources
