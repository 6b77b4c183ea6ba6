"""A generator's own codes as ground-truth factors: disentanglement metrics without labels.

A trained generator is a ground truth of its own making: fix some of its codes, draw the rest
and the noise, and it draws observations whose factors are known. Categorical codes are factors
as they are; a continuous code becomes a factor on a grid of `grid` values (the midpoints of
equal-probability bins of its prior). The noise is drawn fresh for every observation and is no
factor. Any model's Q can then be scored on these observations as on dSprites (ModelCentrality,
`infogan.evaluation.selection`, scores every model's Q on every other model's generated data this way).

`GeneratedTruth` generates each distinct draw of factors once and passes the images straight to
every reader (representation function) it was given, keeping only their codes; the metrics see
row numbers as observations. A metric run again with the same seed draws the same factors and
is answered from those codes, so scoring N readers on one generator generates its images once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import torch

from infogan.core.latent import Latent, LatentSpec
from infogan.evaluation.disentanglement.sources import GroundTruth, Representation, as_codes

Generate = Callable[[Latent], Any]


def code_grid(prior: str, size: int) -> np.ndarray:
    """`size` values of a continuous code: the midpoints, in probability, of `size` equally
    likely bins of its prior (U(-1, 1): evenly spaced, 1/size from the ends; N(0, 1): quantiles)."""
    if size < 2:
        raise ValueError(f"a continuous code's grid needs two or more values, got {size}")
    levels = (np.arange(size) + 0.5) / size
    if prior == "uniform":
        return levels * 2 - 1
    return np.array([NormalDist().inv_cdf(float(level)) for level in levels])


class _Rows:
    """A growing (rows, width) float64 array."""

    def __init__(self) -> None:
        self.data = np.zeros((0, 0))
        self.count = 0

    def append(self, block: np.ndarray) -> None:
        if self.count and self.data.shape[1] != block.shape[1]:
            raise ValueError(f"the reader gave {block.shape[1]} codes, earlier {self.data.shape[1]}")
        if self.count + len(block) > len(self.data):
            grown = np.zeros((max(2 * len(self.data), self.count + len(block)), block.shape[1]))
            if self.count:
                grown[: self.count] = self.data[: self.count]
            self.data = grown
        self.data[self.count : self.count + len(block)] = block
        self.count += len(block)

    def take(self, rows: np.ndarray) -> np.ndarray:
        return self.data[: self.count][rows]


class GeneratedTruth:
    """The codes of `spec` as ground-truth factors of the observations `generate` makes.

    generate: a Latent -> observations (any batch whose first axis is the batch), e.g. a model's
        `generate_from`. readers: representation functions that each read those observations
        into codes; `representation(r)` is reader r as the metrics call it (on row numbers).
    grid: values per continuous code. seed: the noise's generator (the same seed feeds two
        generators the same noise, for comparisons with common random numbers).

    generated: observations generated so far; encoded: observations read, summed over readers.
    """

    def __init__(
        self,
        spec: LatentSpec,
        generate: Generate,
        readers: Sequence[Representation],
        grid: int = 32,
        seed: int = 0,
    ) -> None:
        if len(spec.code_names) < 2:
            raise ValueError("a generator's codes make a ground truth only with two or more codes")
        self.spec = spec
        self.generate = generate
        self.readers = list(readers)
        self.grid_values = code_grid(spec.continuous_prior, grid)
        sizes = tuple(spec.categorical) + (grid,) * spec.continuous
        values = tuple(np.arange(k, dtype=np.float64) for k in spec.categorical) + (self.grid_values,) * spec.continuous
        continuous = (False,) * len(spec.categorical) + (True,) * spec.continuous
        self.truth = GroundTruth(tuple(spec.code_names), sizes, self.observe, values, continuous)
        self._noise = torch.Generator().manual_seed(seed)
        self._drawn: dict[str, np.ndarray] = {}
        self._codes = [_Rows() for _ in self.readers]
        self.generated = 0
        self.encoded = 0

    def latent(self, factors: np.ndarray) -> Latent:
        """Latents whose codes are the given factor indices (categorical codes first), with noise
        drawn from this truth's generator."""
        n_cat = len(self.spec.categorical)
        base = self.spec.sample(len(factors), self._noise)
        categorical = torch.from_numpy(np.ascontiguousarray(factors[:, :n_cat], dtype=np.int64))
        continuous = torch.from_numpy(self.grid_values[factors[:, n_cat:]]).to(base.continuous.dtype)
        return Latent(base.noise, categorical, continuous)

    def observe(self, factors: np.ndarray) -> np.ndarray:
        """Row numbers of the observations of `factors` (n, n_codes): generated and read by every
        reader the first time these factors are drawn, looked up afterwards."""
        factors = np.asarray(factors, dtype=np.int64)
        key = hashlib.blake2b(repr(factors.shape).encode() + factors.tobytes(), digest_size=16).hexdigest()
        if key in self._drawn:
            return self._drawn[key]
        observations = self.generate(self.latent(factors))
        for reader, codes in zip(self.readers, self._codes):
            codes.append(as_codes(reader(observations), len(factors)))
        self.encoded += len(factors) * len(self.readers)
        rows = np.arange(self.generated, self.generated + len(factors), dtype=np.int64)
        self.generated += len(factors)
        self._drawn[key] = rows
        return rows

    def representation(self, reader: int) -> Representation:
        """Reader `reader`'s codes of observations given by their row numbers."""
        codes = self._codes[reader]
        return lambda rows: codes.take(np.asarray(rows, dtype=np.int64))
