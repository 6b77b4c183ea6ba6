"""Ground-truth factor sources and representation functions, the two inputs of every metric.

A ground truth is a data set whose observations are fixed by discrete factors on a grid
(dSprites: shape x scale x orientation x pos_x x pos_y). A representation function maps a batch
of observations to codes, an (n, n_codes) float array; `representation_of` makes one from a
trained InfoGAN (its Q network's codes).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from infogan.model import InfoGAN

Representation = Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class GroundTruth:
    """Observations indexed by ground-truth factors.

    factor_sizes: the number of values of each factor; factors are drawn independently and
        uniformly over their indices 0..size-1.
    observe: factor indices (n, n_factors) int64 -> n observations (an array or tensor whose
        first axis has length n), whatever the representation function takes.
    grid: for each factor, the value of each index (defaults to the index itself); used where a
        metric needs factor values rather than classes (InfoGAN-CR's SAP and Lasso DCI).
    continuous: which factors are continuous quantities (all discrete by default).
    """

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    observe: Callable[[np.ndarray], Any]
    grid: tuple[np.ndarray, ...] | None = None
    continuous: tuple[bool, ...] | None = None

    def __post_init__(self) -> None:
        k = len(self.factor_sizes)
        if k < 2 or len(self.factor_names) != k:
            raise ValueError("a ground truth needs two or more factors, each with a name")
        if any(int(size) < 2 for size in self.factor_sizes):
            raise ValueError(f"every factor needs two or more values, got sizes {tuple(self.factor_sizes)}")
        if self.grid is not None and [len(values) for values in self.grid] != list(self.factor_sizes):
            raise ValueError("grid must give one value per index of every factor")
        if self.continuous is not None and len(self.continuous) != k:
            raise ValueError("continuous must say for every factor whether it is continuous")

    @property
    def n_factors(self) -> int:
        return len(self.factor_sizes)

    @property
    def is_continuous(self) -> tuple[bool, ...]:
        return tuple(bool(c) for c in self.continuous) if self.continuous is not None else (False,) * self.n_factors

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` factor index tuples drawn uniformly from the grid, (n, n_factors) int64."""
        return np.stack([rng.integers(0, size, n) for size in self.factor_sizes], axis=1).astype(np.int64)

    def observations(self, factors: np.ndarray) -> Any:
        return self.observe(np.asarray(factors, dtype=np.int64))

    def values(self, factors: np.ndarray) -> np.ndarray:
        """Factor values of factor indices, (n, n_factors) floats."""
        factors = np.asarray(factors, dtype=np.int64)
        if self.grid is None:
            return factors.astype(np.float64)
        return np.stack([np.asarray(self.grid[j], dtype=np.float64)[factors[:, j]] for j in range(self.n_factors)], 1)


def dsprites_truth(packed: Any = None, cache_dir: str | Path | None = None) -> GroundTruth:
    """dSprites as a ground truth: observations are uint8 images (n, 1, 64, 64) in {0, 255}.

    `packed` is the bit-packed image array of `infogan.data.dsprites` (any array-like indexed by
    image index that gives (n, 512) uint8 rows); by default it is loaded from (or generated into)
    `cache_dir`, else the user cache. Shape is discrete; scale, orientation and position are
    continuous, with the data set's values (orientation in radians, positions in [0, 1]).
    """
    from infogan.data import dsprites

    if packed is None:
        if cache_dir is None:
            from infogan.data import cache_dir as user_cache

            cache_dir = user_cache() / "dsprites"
        packed = dsprites.load_packed(Path(cache_dir))

    def observe(factors: np.ndarray) -> torch.Tensor:
        indices = np.ravel_multi_index(tuple(factors.T), dsprites.FACTOR_SIZES)
        return dsprites.unpack(packed[indices])

    grid = (
        np.arange(len(dsprites.SHAPES), dtype=np.float64),
        dsprites.SCALES,
        dsprites.ORIENTATIONS,
        dsprites.POSITIONS,
        dsprites.POSITIONS,
    )
    return GroundTruth(dsprites.FACTOR_NAMES, dsprites.FACTOR_SIZES, observe, grid, (False, True, True, True, True))


def representation_of(model: InfoGAN, batch_size: int = 1000) -> Representation:
    """The codes Q reads from images, in `model.spec.code_names` order, as float64 columns:
    categorical codes as their most likely value, continuous codes as Q's mean."""
    names = list(model.spec.code_names)

    def represent(images: Any) -> np.ndarray:
        codes = model.encode(torch.as_tensor(images), batch_size)
        return np.stack([codes[name].double().numpy() for name in names], axis=1)

    return represent


def as_codes(values: Any, n: int) -> np.ndarray:
    """A representation function's output as an (n, n_codes) float64 array, checked."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    codes = np.asarray(values, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != n:
        raise ValueError(f"the representation gave shape {codes.shape} for {n} observations; expected (n, n_codes)")
    if not np.isfinite(codes).all():
        raise ValueError("the representation gave non-finite codes")
    return codes


def represent_factors(represent: Representation, truth: GroundTruth, factors: np.ndarray, chunk: int) -> np.ndarray:
    """Codes of the observations of `factors` (n, n_factors), `chunk` observations at a time."""
    parts = []
    for start in range(0, len(factors), chunk):
        part = factors[start : start + chunk]
        parts.append(as_codes(represent(truth.observations(part)), len(part)))
    return np.concatenate(parts)


_draws: ContextVar[dict | None] = ContextVar("disentanglement_draws", default=None)


@contextlib.contextmanager
def shared_draws() -> Iterator[None]:
    """Within this context, random draws of the same factors for the same representation and
    ground truth are represented once and their codes reused (metrics seeded alike draw the same
    factors first: InfoGAN-CR scores MIG, DCI, SAP and modularity on one set of images)."""
    token = _draws.set({})
    try:
        yield
    finally:
        _draws.reset(token)


def sample_codes(
    represent: Representation, truth: GroundTruth, n: int, rng: np.random.Generator, chunk: int
) -> tuple[np.ndarray, np.ndarray]:
    """`n` random factor tuples and the codes of their observations: (codes, factors)."""
    factors = truth.sample_factors(n, rng)
    cache = _draws.get()
    if cache is None:
        return represent_factors(represent, truth, factors, chunk), factors
    key = (id(represent), id(truth), hashlib.blake2b(factors.tobytes(), digest_size=16).hexdigest())
    if key not in cache:
        codes = represent_factors(represent, truth, factors, chunk)
        codes.setflags(write=False)
        cache[key] = codes
    return cache[key], factors


def fixed_factors(n: int, n_factors: int, rng: np.random.Generator, round_robin: bool) -> np.ndarray:
    """Which factor each of `n` groups holds fixed: i mod n_factors, or drawn uniformly."""
    return np.arange(n) % n_factors if round_robin else rng.integers(0, n_factors, n)


def fixed_factor_groups(
    truth: GroundTruth, n: int, size: int, rng: np.random.Generator, round_robin: bool
) -> tuple[np.ndarray, np.ndarray]:
    """`n` groups of `size` factor tuples in which one factor takes a single value per group
    and the others vary freely: (fixed factor per group (n,), factors (n, size, n_factors))."""
    fixed = fixed_factors(n, truth.n_factors, rng, round_robin)
    groups = truth.sample_factors(n * size, rng).reshape(n, size, truth.n_factors)
    rows = np.arange(n)
    groups[rows, :, fixed] = groups[rows, 0, fixed][:, None]
    return fixed, groups


def group_features(
    represent: Representation,
    truth: GroundTruth,
    groups: np.ndarray,
    chunk: int,
    reduce: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """`reduce` applied to the codes of each chunk of groups (g, size, n_codes), concatenated."""
    n, size, k = groups.shape
    per_call = max(1, chunk // size)
    parts = []
    for start in range(0, n, per_call):
        block = groups[start : start + per_call]
        codes = represent_factors(represent, truth, block.reshape(-1, k), chunk)
        parts.append(reduce(codes.reshape(len(block), size, -1)))
    return np.concatenate(parts)
