"""Any folder of images as a training set: recursive, PNG/JPEG, grey or RGB, square-cropped and
resized to the network's size, held in memory as uint8."""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from infogan.errors import InfoGANError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
# The most pixels an input image may have (the same as Pillow's default limit): a larger one,
# such as a small PNG that inflates to gigabytes (a decompression bomb), is refused before
# its pixels are decoded. Checked here, so Pillow's own process-wide setting is left alone.
MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3


class ImageTooLargeError(ValueError):
    """An image file with more pixels than MAX_IMAGE_PIXELS."""


def image_files(folder: Path) -> list[Path]:
    """Every PNG/JPEG file below `folder`, in a stable (sorted) order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _too_large(path: Path, detail: str) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{path} is too large ({detail}): an input image may have at most {MAX_IMAGE_PIXELS} pixels, "
        "and one this large may be a decompression bomb"
    )


def read_square_image(path: Path, channels: int, size: int) -> np.ndarray:
    """One image as uint8 (channels, size, size): centre-cropped to a square, then resized.

    An image of more than MAX_IMAGE_PIXELS pixels is refused (ImageTooLargeError) from its
    header, before its pixels are decoded.
    """
    try:
        with warnings.catch_warnings():
            # Pillow's warning is for sizes that the check below refuses (or, where Pillow's own
            # setting is lower than ours, allows): the check here decides, without a warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise _too_large(path, f"{width}x{height} pixels")
                image.load()
                image = image.convert("L" if channels == 1 else "RGB")
    except Image.DecompressionBombError as exc:  # Pillow refused it while opening, before our check
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(path, f"{pixels.group(1)} pixels" if pixels else "over Pillow's limit") from None
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

    Files that cannot be decoded, or have more than MAX_IMAGE_PIXELS pixels, are skipped with a
    count on stderr (`on_bad_file="skip"`) or stop loading with an error naming the file
    (`on_bad_file="error"`).
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
                problem = str(exc) if isinstance(exc, ImageTooLargeError) else f"cannot read {path} as an image ({exc})"
                raise InfoGANError(f"{problem}; remove it or set data.on_bad_file: skip") from None
            bad.append(path)
    if bad:
        print(f"warning: skipped {len(bad)} unreadable image file(s) in {folder}, e.g. {bad[0]}", file=sys.stderr)
    if not arrays:
        raise InfoGANError(f"none of the {len(files)} image files in {folder} could be read")
    return torch.from_numpy(np.stack(arrays))
