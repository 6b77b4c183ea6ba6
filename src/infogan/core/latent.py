"""The generator's input: noise z and latent codes c, their priors, sampling and fixed grids.

Codes are named c1, c2, ... in the paper's order: categorical codes first, then continuous ones.
The generator sees [noise, one-hot of each categorical code, continuous codes] concatenated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from infogan.errors import InfoGANError, require, require_choice

PRIORS = ("uniform", "normal")
# One rule for every front end (sample, traverse, the explorer, InfoGAN.generate):
MAX_CODE = 10.0  # continuous codes are taken in [-MAX_CODE, MAX_CODE]: ten times the priors' U(-1, 1) or N(0, 1)
MAX_STEPS = 32  # values of a continuous code in a traversal: columns beyond that are too narrow to see


@dataclass(frozen=True)
class Latent:
    """One batch of latent variables.

    noise: (B, noise_dim) floats; categorical: (B, n_categorical) integer indices;
    continuous: (B, n_continuous) floats.
    """

    noise: torch.Tensor
    categorical: torch.Tensor
    continuous: torch.Tensor

    def __len__(self) -> int:
        return self.noise.shape[0]

    def rows(self, rows: slice) -> Latent:
        """The latents of rows `rows` (views, no copy): one rank's share of a global batch."""
        return Latent(self.noise[rows], self.categorical[rows], self.continuous[rows])


@dataclass(frozen=True)
class LatentSpec:
    """The generator's input, and the config's `latent` section: the noise and the codes, their
    sizes and priors."""

    noise_dim: int = 62
    noise_prior: str = "uniform"
    noise_scale: float = 1.0
    categorical: tuple[int, ...] = (10,)
    continuous: int = 2
    continuous_prior: str = "uniform"

    def __post_init__(self) -> None:
        object.__setattr__(self, "categorical", tuple(self.categorical))
        require(self.noise_dim >= 0, "latent.noise_dim", "must be 0 or more")
        require(self.continuous >= 0, "latent.continuous", "must be 0 or more")
        require(
            math.isfinite(self.noise_scale) and self.noise_scale > 0, "latent.noise_scale", "must be a number above 0"
        )
        for k in self.categorical:
            require(k >= 2, "latent.categorical", f"has a code with {k} values; each needs 2 or more")
        require(
            self.noise_dim + sum(self.categorical) + self.continuous > 0,
            "latent",
            "is empty; give noise_dim, categorical or continuous a size",
        )
        require_choice(self.noise_prior, PRIORS, "latent.noise_prior")
        require_choice(self.continuous_prior, PRIORS, "latent.continuous_prior")

    @property
    def input_dim(self) -> int:
        """Width of the generator's input vector."""
        return self.noise_dim + sum(self.categorical) + self.continuous

    @property
    def categorical_names(self) -> list[str]:
        return [f"c{i + 1}" for i in range(len(self.categorical))]

    @property
    def continuous_names(self) -> list[str]:
        start = len(self.categorical)
        return [f"c{start + i + 1}" for i in range(self.continuous)]

    @property
    def code_names(self) -> list[str]:
        return self.categorical_names + self.continuous_names

    def categorical_entropy(self) -> list[float]:
        """H(c) = log K for each uniform categorical code (a constant, not estimated)."""
        return [math.log(k) for k in self.categorical]

    def continuous_entropy(self) -> float:
        """Differential entropy of one continuous code under its prior."""
        if self.continuous_prior == "uniform":
            return math.log(2.0)  # U(-1, 1)
        return 0.5 * math.log(2 * math.pi * math.e)  # N(0, 1)

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu"
    ) -> Latent:
        """Draw a batch from the priors, using `generator` for all randomness."""
        noise = _draw(self.noise_prior, (batch_size, self.noise_dim), generator, device)
        if self.noise_scale != 1.0:
            noise = noise * self.noise_scale
        cats = [torch.randint(k, (batch_size,), generator=generator, device=device) for k in self.categorical]
        categorical = torch.stack(cats, dim=1) if cats else torch.zeros(batch_size, 0, dtype=torch.long, device=device)
        continuous = _draw(self.continuous_prior, (batch_size, self.continuous), generator, device)
        return Latent(noise, categorical, continuous)

    def to_input(self, latent: Latent) -> torch.Tensor:
        """Concatenate noise, one-hot categorical codes and continuous codes."""
        parts = [latent.noise]
        for i, k in enumerate(self.categorical):
            parts.append(torch.nn.functional.one_hot(latent.categorical[:, i], k).to(latent.noise.dtype))
        parts.append(latent.continuous)
        return torch.cat(parts, dim=1)

    def with_codes(self, latent: Latent, codes: dict[str, float | int]) -> Latent:
        """A copy of `latent` with the named codes set to fixed values for every row."""
        categorical = latent.categorical.clone()
        continuous = latent.continuous.clone()
        for name, value in codes.items():
            kind, index = self.locate(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InfoGANError(f"code {name} must be a finite number; got {value!r}")
            if kind == "continuous" and abs(value) > MAX_CODE:
                raise InfoGANError(
                    f"code {name} = {value:g} is out of range: continuous codes go from -{MAX_CODE:g} to "
                    f"{MAX_CODE:g} (ten times the spread of their prior; the model has seen nothing further out)"
                )
            if kind == "categorical":
                k = self.categorical[index]
                if int(value) != value or not 0 <= value < k:
                    raise InfoGANError(f"code {name} is categorical with values 0..{k - 1}; got {value}")
                categorical[:, index] = int(value)
            else:
                continuous[:, index] = float(value)
        return Latent(latent.noise, categorical, continuous)

    def locate(self, name: str) -> tuple[str, int]:
        """('categorical' | 'continuous', index within its kind) for a code name like 'c2'."""
        if name in self.categorical_names:
            return "categorical", self.categorical_names.index(name)
        if name in self.continuous_names:
            return "continuous", self.continuous_names.index(name)
        known = ", ".join(self.code_names) or "none"
        raise InfoGANError(f"unknown code {name!r}; this model's codes are: {known}")


def _draw(
    prior: str, shape: tuple[int, int], generator: torch.Generator | None, device: str | torch.device
) -> torch.Tensor:
    if prior == "uniform":
        return torch.rand(shape, generator=generator, device=device) * 2 - 1
    return torch.randn(shape, generator=generator, device=device)


def check_sweep(value_range: tuple[float, float], steps: int) -> None:
    """Refuse (InfoGANError) a traversal of a continuous code that no front end draws: a range
    that is not two finite numbers with -MAX_CODE <= low < high <= MAX_CODE, or a number of
    steps outside 2..MAX_STEPS. The CLI, `infogan.save_traversal` and the explorer share it."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= MAX_STEPS:
        raise InfoGANError(
            f"steps must be from 2 to {MAX_STEPS} (the values a traversal shows of a continuous code); got {steps}"
        )
    if len(value_range) != 2 or not all(math.isfinite(v) for v in value_range):
        raise InfoGANError(f"the traversal range must be two finite numbers; got {tuple(value_range)}")
    low, high = value_range
    if not low < high:
        raise InfoGANError(f"the traversal range needs low < high (a sweep goes up); got low {low:g}, high {high:g}")
    if not -MAX_CODE <= low < high <= MAX_CODE:
        raise InfoGANError(
            f"the traversal range goes from -{MAX_CODE:g} to {MAX_CODE:g} (ten times the spread of the codes' "
            f"prior; the model has seen nothing further out); got low {low:g}, high {high:g}"
        )


def traversal_latents(
    spec: LatentSpec,
    code: str,
    columns: int = 10,
    rows: int = 10,
    value_range: tuple[float, float] = (-2.0, 2.0),
    generator: torch.Generator | None = None,
) -> tuple[Latent, int]:
    """Latents for a traversal grid, row-major, and the grid's number of columns.

    The named code varies along the columns and everything else is fixed per row. A categorical
    code takes each of its values in turn (columns = its size; rows are random draws). A
    continuous code sweeps `value_range`; when the model has a categorical code, row r sets the
    first categorical code to r (so rows run over its values), otherwise rows are random draws.
    """
    kind, index = spec.locate(code)
    check_sweep(value_range, columns)
    if kind == "categorical":
        columns = spec.categorical[index]
    elif spec.categorical:
        rows = spec.categorical[0]
    base = spec.sample(rows, generator)
    if kind == "continuous" and spec.categorical:
        base.categorical[:, 0] = torch.arange(rows)
    noise = base.noise.repeat_interleave(columns, dim=0)
    categorical = base.categorical.repeat_interleave(columns, dim=0)
    continuous = base.continuous.repeat_interleave(columns, dim=0)
    if kind == "categorical":
        categorical[:, index] = torch.arange(columns).repeat(rows)
    else:
        sweep = torch.linspace(value_range[0], value_range[1], columns)
        continuous[:, index] = sweep.repeat(rows)
    return Latent(noise, categorical, continuous), columns


def code_rows_latents(
    spec: LatentSpec,
    columns: int = 10,
    value_range: tuple[float, float] = (-1.0, 1.0),
    generator: torch.Generator | None = None,
) -> list[tuple[str, Latent]]:
    """One latent draw, then for every code a row of latents in which that code alone varies
    (a continuous one over `value_range` in `columns` steps, a categorical one over its values)
    and everything else keeps the draw's values: the rows of a one-figure traversal in which each
    row shows what one code does to the same image."""
    check_sweep(value_range, columns)
    base = spec.sample(1, generator)
    rows = []
    for name in spec.code_names:
        kind, index = spec.locate(name)
        n = spec.categorical[index] if kind == "categorical" else columns
        noise, categorical, continuous = (t.repeat(n, 1) for t in (base.noise, base.categorical, base.continuous))
        if kind == "categorical":
            categorical[:, index] = torch.arange(n)
        else:
            continuous[:, index] = torch.linspace(value_range[0], value_range[1], n)
        rows.append((name, Latent(noise, categorical, continuous)))
    return rows
