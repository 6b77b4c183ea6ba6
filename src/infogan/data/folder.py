"""Any folder of images as a training set: recursive, PNG/JPEG, grey or RGB, square-cropped and
resized to the network's size, held in memory as uint8."""

from __future__ import annotations

import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from infogan.errors import InfoGANError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
# The only formats decoded, whatever a file is named: Pillow knows dozens (TIFF, WebP, EPS through
# Ghostscript, ...), each a parser that user files would reach. A file in another is unreadable.
IMAGE_FORMATS = ("PNG", "JPEG")
# An image may have at most max(LIMIT_SIDE, SIDE_FACTOR x the model's side) squared pixels (models
# up to 64x64: 2048x2048; 128x128: 4096x4096), checked from the header before any pixel is decoded;
# a JPEG over it is decoded at 1/2, 1/4 or 1/8 size (Pillow's draft) when that fits.
LIMIT_SIDE = 2048
SIDE_FACTOR = 32


def pixel_limit(size: int) -> int:
    """The most pixels an image given to a model of `size` x `size` images may have (decoded)."""
    return max(LIMIT_SIDE, SIDE_FACTOR * size) ** 2


class UnreadableImageError(ValueError):
    """An image file that cannot be used: not PNG or JPEG, damaged, or too large; the message
    names the file."""


class ImageTooLargeError(UnreadableImageError):
    """An image file with more pixels than `pixel_limit` allows."""


def image_files(folder: Path) -> list[Path]:
    """Every PNG/JPEG file below `folder`, in a stable (sorted) order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _too_large(path: Path, detail: str, size: int) -> ImageTooLargeError:
    side = math.isqrt(pixel_limit(size))
    return ImageTooLargeError(
        f"{path} is too large ({detail}): an image for a {size}x{size} model may have at most "
        f"{pixel_limit(size)} pixels ({side}x{side}), and one this large may be a decompression bomb"
    )


def _unreadable(path, reason: str) -> UnreadableImageError:
    formats = ", ".join(IMAGE_FORMATS)
    return UnreadableImageError(f"cannot read {path} as an image: {reason} (the formats read here: {formats})")


def read_square_image(path, channels: int, size: int) -> np.ndarray:
    """One image (a path or a binary file) as uint8 (channels, size, size): centre-cropped to a
    square, then resized.

    Only PNG and JPEG are decoded, and an image of more than `pixel_limit(size)` pixels is refused
    from its header, before its pixels are decoded. Any of these, and every error of the decoder
    on a damaged file, is an UnreadableImageError naming the file (FileNotFoundError passes).
    """
    try:
        with warnings.catch_warnings():
            # Pillow's warning is for sizes that the check below refuses (or, where Pillow's own
            # setting is lower than ours, allows): the check here decides, without a warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as image:
                _fit(image, path, channels, size)
                image.load()
                image = image.convert("L" if channels == 1 else "RGB")
    except (FileNotFoundError, UnreadableImageError):
        raise
    except Image.DecompressionBombError as exc:  # Pillow refused it while opening, before our check
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(path, f"{pixels.group(1)} pixels" if pixels else "over Pillow's limit", size) from None
    except UnidentifiedImageError:
        raise _unreadable(path, "it is not a PNG or JPEG file, or it is damaged") from None
    except Exception as exc:  # a damaged file: SyntaxError, struct.error, EOFError, OSError, ... from Pillow
        raise _unreadable(path, f"{type(exc).__name__}: {exc}; the file may be damaged") from None
    return _square(image, channels, size)


def _fit(image: Image.Image, path, channels: int, size: int) -> None:
    """Refuse an opened (not yet decoded) image over the pixel limit, or, for a JPEG, have it
    decoded at the reduced size (still at least `size` a side) that fits."""
    width, height = image.size
    if width * height <= pixel_limit(size):
        return
    image.draft("L" if channels == 1 else "RGB", (size, size))  # JPEG only; other formats ignore it
    if image.size[0] * image.size[1] > pixel_limit(size):
        raise _too_large(path, f"{width}x{height} pixels", size)


def _square(image: Image.Image, channels: int, size: int) -> np.ndarray:
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

    Files that cannot be decoded (not PNG or JPEG, damaged, more than `pixel_limit(size)` pixels)
    are skipped with a count on stderr (`on_bad_file="skip"`) or stop loading with an error naming the file
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
        except (UnreadableImageError, OSError) as exc:  # OSError: e.g. the file vanished or cannot be opened
            if on_bad_file == "error":
                problem = str(exc) if isinstance(exc, UnreadableImageError) else f"cannot read {path} ({exc})"
                raise InfoGANError(f"{problem}; remove it or set data.on_bad_file: skip") from None
            bad.append(path)
    if bad:
        print(f"warning: skipped {len(bad)} unreadable image file(s) in {folder}, e.g. {bad[0]}", file=sys.stderr)
    if not arrays:
        raise InfoGANError(f"none of the {len(files)} image files in {folder} could be read")
    return torch.from_numpy(np.stack(arrays))
