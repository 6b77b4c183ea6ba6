"""dSprites, generated procedurally on its exact factor grid.

737,280 binary 64x64 images: 3 shapes (square, ellipse, heart) x 6 scales in [0.5, 1] x 40
orientations in [0, 2*pi] x 32 x-positions x 32 y-positions, every combination once. Image i
has the factors given by `factors(i)`, in the data set's canonical order (shape, scale,
orientation, pos_x, pos_y) with pos_y varying fastest:

    i = (((shape * 6 + scale) * 40 + orientation) * 32 + pos_x) * 32 + pos_y

Each shape is drawn once per (scale, orientation) by 4x4 supersampling of an exact outline
(covered if at least half the samples are inside), then moved by whole pixels to each
position, so the images are exact translates of one another. The images are kept bit-packed
(one bit a pixel, 512 bytes an image, 377 MB in all) and cached on disk.
"""

from __future__ import annotations

import math
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from infogan.errors import InfoGANError
from infogan.fileio import atomic_write

SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * math.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
IMAGE_SIZE = 64
COUNT = math.prod(FACTOR_SIZES)
SPRITE = 33  # the sprite patch (odd, so it has a centre pixel)
MAX_RADIUS = 16.0  # pixels from the centre to the edge of the patch
SUPERSAMPLE = 4
CACHE_NAME = "dsprites-v1.npy"


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u, v), in units of the shape's half-size, lie inside the shape."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == "ellipse":
        return (u / 1.0) ** 2 + (v / 0.5) ** 2 <= 1.0
    # heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, which spans y in [-1, 1.25]; centred and scaled
    x, y = u * 1.15, -v * 1.15 + 0.125
    return (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0


def render_sprite(shape: str, scale: float, orientation: float) -> np.ndarray:
    """A (SPRITE, SPRITE) bool patch of the shape, centred, rotated by `orientation` radians."""
    offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    coords = np.arange(SPRITE) - SPRITE // 2
    fine = (coords[:, None] + offsets[None, :]).reshape(-1)  # sample positions along one axis
    rows, cols = np.meshgrid(fine, fine, indexing="ij")
    half_size = MAX_RADIUS * scale * 0.8
    cos, sin = math.cos(orientation), math.sin(orientation)
    u = (cos * cols + sin * rows) / half_size
    v = (-sin * cols + cos * rows) / half_size
    inside = _inside(shape, u, v).reshape(SPRITE, SUPERSAMPLE, SPRITE, SUPERSAMPLE)
    return inside.mean(axis=(1, 3)) >= 0.5


def _placements(sprite: np.ndarray) -> np.ndarray:
    """All 32 x 32 placements of one sprite, bit-packed: (1024, 512) uint8, pos_y fastest."""
    canvas = np.zeros((32, 32, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for x in range(32):
        for y in range(32):
            canvas[x, y, y : y + SPRITE, x : x + SPRITE] = sprite
    return np.packbits(canvas.reshape(1024, -1), axis=1)


def generate(progress: bool = False) -> np.ndarray:
    """Every dSprites image, bit-packed: (737280, 512) uint8, in index order."""
    packed = np.empty((COUNT, IMAGE_SIZE * IMAGE_SIZE // 8), dtype=np.uint8)
    block = 32 * 32
    index = 0
    for shape in SHAPES:
        for scale in SCALES:
            for orientation in ORIENTATIONS:
                packed[index : index + block] = _placements(render_sprite(shape, scale, orientation))
                index += block
            if progress:
                print(f"dsprites: {index}/{COUNT}", file=sys.stderr, flush=True)
    return packed


def factors(indices: np.ndarray | int) -> np.ndarray:
    """Factor indices (shape, scale, orientation, pos_x, pos_y) of image indices, (N, 5)."""
    return np.stack(np.unravel_index(np.asarray(indices), FACTOR_SIZES), axis=-1)


def factor_values(indices: np.ndarray | int) -> np.ndarray:
    """Factor values (shape index, scale, orientation in radians, pos_x, pos_y), (N, 5) floats."""
    f = factors(indices)
    return np.stack(
        [
            f[..., 0].astype(float),
            SCALES[f[..., 1]],
            ORIENTATIONS[f[..., 2]],
            POSITIONS[f[..., 3]],
            POSITIONS[f[..., 4]],
        ],
        axis=-1,
    )


def index_of(shape: int, scale: int, orientation: int, pos_x: int, pos_y: int) -> int:
    """The image index of one combination of factor indices."""
    return int(np.ravel_multi_index((shape, scale, orientation, pos_x, pos_y), FACTOR_SIZES))


def load_packed(cache_dir: Path) -> np.ndarray:
    """The bit-packed images, from the cache or generated (about a minute) and cached."""
    path = cache_dir / CACHE_NAME
    if path.is_file():
        try:  # memory-mapped, so a header claiming a huge array allocates nothing
            packed = np.load(path, mmap_mode="r")
        except (OSError, ValueError, EOFError, OverflowError, zipfile.BadZipFile) as exc:
            raise InfoGANError(f"the dSprites cache {path} is damaged ({exc}); delete it to regenerate") from None
        if not isinstance(packed, np.ndarray):  # an .npz archive
            packed.close()
            raise InfoGANError(f"the dSprites cache {path} is not a .npy array; delete it to regenerate")
        if packed.shape == (COUNT, IMAGE_SIZE * IMAGE_SIZE // 8) and packed.dtype == np.uint8:
            return packed
        raise InfoGANError(f"the dSprites cache {path} has the wrong shape {packed.shape}; delete it to regenerate")
    packed = generate(progress=True)
    try:
        with atomic_write(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, packed)
    except OSError as exc:
        print(f"warning: could not cache dSprites at {path}: {exc}", file=sys.stderr)
    return packed


def unpack(packed: np.ndarray) -> torch.Tensor:
    """Bit-packed rows to uint8 images (N, 1, 64, 64) with values 0 and 255."""
    bits = np.unpackbits(np.asarray(packed), axis=1)
    return torch.from_numpy(bits.reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE) * np.uint8(255))


class PackedImages:
    """dSprites images kept bit-packed in memory, unpacked a batch at a time (for training)."""

    def __init__(self, packed: np.ndarray) -> None:
        self.packed = packed

    def __len__(self) -> int:
        return len(self.packed)

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        return unpack(self.packed[rows.cpu().numpy()])
