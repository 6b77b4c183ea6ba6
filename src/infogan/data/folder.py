"""Any folder of images as a training set: recursive, PNG/JPEG, grey or RGB, square-cropped and
resized to the network's size, held in memory as uint8."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import InfoGANError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def image_files(folder: Path) -> list[Path]:
    """Every PNG/JPEG file below `folder`, in a stable (sorted) order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_square_image(path: Path, channels: int, size: int) -> np.ndarray:
    """One image as uint8 (channels, size, size): centre-cropped to a square, then resized."""
    with Image.open(path) as image:
        image.load()
        image = image.convert("L" if channels == 1 else "RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != size:
        image = image.resize((size, size), Image.Resampling.BICUBIC if side < size else Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def load_image_folder(folder: str | Path, channels: int, size: int, on_bad_file: str = "skip") -> torch.Tensor:
    """All images below `folder` as uint8 (N, channels, size, size).

    Files that cannot be decoded are skipped with a count on stderr (`on_bad_file="skip"`) or
    stop loading with an error naming the file (`on_bad_file="error"`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InfoGANError(f"image folder {folder} does not exist or is not a folder; set data.path to one")
    files = image_files(folder)
    if not files:
        raise InfoGANError(f"image folder {folder} holds no .png, .jpg or .jpeg files (searched recursively)")
    arrays, bad = [], []
    for path in files:
        try:
            arrays.append(read_square_image(path, channels, size))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            if on_bad_file == "error":
                raise InfoGANError(
                    f"cannot read {path} as an image ({exc}); remove it or set data.on_bad_file: skip"
                ) from None
            bad.append(path)
    if bad:
        print(f"warning: skipped {len(bad)} unreadable image file(s) in {folder}, e.g. {bad[0]}", file=sys.stderr)
    if not arrays:
        raise InfoGANError(f"none of the {len(files)} image files in {folder} could be read")
    return torch.from_numpy(np.stack(arrays))
