"""A representation that encodes each observation of a finite factor grid at most once.

Where a ground truth's observations are fixed by its factors (dSprites: one image per factor
tuple), the metrics draw the same observations again and again: the full disentanglement_lib
protocol draws about 2.9 million from dSprites' 737,280 images. `CachedRepresentation` wraps a
representation function and a ground truth so that the metrics see a ground truth whose
observations are flat grid indices, and the representation encodes an index only the first time
it appears (the missing ones in chunks) and afterwards reads its codes from a float array. The
metrics' results are those of the plain pair, number for number, as long as the representation
gives an observation the same codes whatever batch it comes in:

    cached = CachedRepresentation(representation_of(model), dsprites_truth())
    evaluate_disentanglement(cached, cached.truth, "disentanglement_lib")
    cached.encoded  # observations that went through the model: at most 737,280
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from infogan.evaluation.disentanglement.sources import GroundTruth, Representation, as_codes

MAX_GRID = 50_000_000  # grid points a cache may cover (its code array is grid x codes floats)


class CachedRepresentation:
    """`represent` over `truth`'s factor grid, each grid point represented at most once.

    Call it on flat grid indices, the observations of `self.truth` (the same factors, whose
    `observe` returns flat indices in row-major order of `factor_sizes`). Codes are float64,
    as every representation's output is once checked.

    encoded: grid points represented so far; seconds: time spent representing them.
    """

    def __init__(self, represent: Representation, truth: GroundTruth, chunk: int = 4096) -> None:
        size = math.prod(int(s) for s in truth.factor_sizes)
        if size > MAX_GRID:
            raise ValueError(f"the factor grid has {size:,} points; a cache covers at most {MAX_GRID:,}")
        if chunk < 1:
            raise ValueError(f"chunk must be 1 or more, got {chunk}")
        self.represent = represent
        self.source = truth
        self.size = size
        self.chunk = chunk
        self.truth = dataclasses.replace(truth, observe=self.indices)
        self.encoded = 0
        self.seconds = 0.0
        self._known = np.zeros(size, dtype=bool)
        self._codes: np.ndarray | None = None

    def indices(self, factors: np.ndarray) -> np.ndarray:
        """Flat grid indices of factor index tuples (n, n_factors)."""
        factors = np.asarray(factors, dtype=np.int64)
        return np.ravel_multi_index(tuple(factors.T), self.source.factor_sizes).astype(np.int64)

    def __call__(self, indices) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) and (indices.min() < 0 or indices.max() >= self.size):
            raise ValueError(f"grid indices must lie in 0..{self.size - 1}")
        self.fill(indices)
        if self._codes is None:  # nothing asked for yet
            return np.zeros((0, 0))
        return self._codes[indices]

    def fill(self, indices: np.ndarray) -> None:
        """Represent the grid points among `indices` not represented yet, `chunk` at a time, in
        ascending order."""
        missing = np.unique(indices[~self._known[indices]])
        start_time = time.perf_counter()
        for start in range(0, len(missing), self.chunk):
            part = missing[start : start + self.chunk]
            factors = np.stack(np.unravel_index(part, self.source.factor_sizes), axis=1).astype(np.int64)
            codes = as_codes(self.represent(self.source.observations(factors)), len(part))
            if self._codes is None:
                self._codes = np.zeros((self.size, codes.shape[1]), dtype=np.float64)
            elif codes.shape[1] != self._codes.shape[1]:
                raise ValueError(f"the representation gave {codes.shape[1]} codes, earlier {self._codes.shape[1]}")
            self._codes[part] = codes
            self._known[part] = True
            self.encoded += len(part)
        self.seconds += time.perf_counter() - start_time

    def codes_of(self, factors: np.ndarray) -> np.ndarray:
        """Codes of the observations of factor index tuples (n, n_factors)."""
        return self(self.indices(factors))
