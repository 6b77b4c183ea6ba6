"""The models an explorer shows, and what its requests ask of them: codes and a seed parsed
from a query (with a clear message for bad values), images as PNG, uploads encoded by Q."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from infogan.core.latent import MAX_CODE, Latent, check_sweep
from infogan.data.inputs import read_image
from infogan.errors import InfoGANError
from infogan.evaluation.labels import RunLabels, read_labels
from infogan.model import InfoGAN, load
from infogan.viz.figures import grid, png_bytes

MAX_SEED = 2**31 - 1  # MAX_CODE and MAX_STEPS are the library's: one rule for every front end
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
QUERY_KEYS = ("run", "seed", "code", "steps", "low", "high")  # every other key of a query names a code


@dataclass(frozen=True)
class ExploredRun:
    """One model given on the command line: loaded, with its labels, or the reason it is not."""

    name: str
    path: Path
    model: InfoGAN | None = None
    labels: RunLabels | None = None
    error: str | None = None

    def describe(self) -> dict:
        info: dict = {"name": self.name, "error": self.error}
        if self.model is not None:
            config = self.model.config
            info.update(
                step=self.model.step,
                dataset=config.data.dataset,
                channels=config.model.image_channels,
                size=config.model.image_size,
                note=self.labels.note,
                codes={name: label.to_dict() for name, label in self.labels.codes.items()},
            )
        return info


def load_runs(paths: list[Path], device: str = "cpu") -> list[ExploredRun]:
    """Load each model with its labels. A model that cannot be loaded is kept with its error
    (the page shows it), unless none can; models with different codes are refused, since the
    same controls drive them all."""
    runs = []
    for path in paths:
        try:
            model = load(path, device)
        except InfoGANError as exc:
            runs.append(ExploredRun(str(path), Path(path), error=str(exc)))
            continue
        labels = read_labels(path, model.spec, model.config.data.dataset, model.step)
        runs.append(ExploredRun(str(path), Path(path), model, labels))
    loaded = [run for run in runs if run.model is not None]
    if not loaded:
        raise InfoGANError("; ".join(f"cannot explore {run.name}: {run.error}" for run in runs))
    first = loaded[0]
    for run in loaded[1:]:
        if _layout(run.model) != _layout(first.model):
            raise InfoGANError(
                f"{run.name} has codes {_layout(run.model)} and {first.name} has {_layout(first.model)}: the same "
                "controls drive both models, so they need the same codes (categorical sizes and continuous count)"
            )
    return runs


def _layout(model: InfoGAN) -> str:
    spec = model.spec
    parts = [f"{n} Cat({k})" for n, k in zip(spec.categorical_names, spec.categorical)]
    return ", ".join(parts + [f"{n} continuous" for n in spec.continuous_names]) or "none"


def code_layout(model: InfoGAN) -> list[dict]:
    """The controls a model needs: one per code, in the model's order."""
    spec = model.spec
    controls = [{"name": n, "kind": "categorical", "size": k} for n, k in zip(spec.categorical_names, spec.categorical)]
    return controls + [{"name": n, "kind": "continuous"} for n in spec.continuous_names]


# -- a request's query ---------------------------------------------------------------------


def pick_run(runs: list[ExploredRun], text: str | None) -> InfoGAN:
    """The loaded model a query's `run` (an index, default 0) names."""
    index = _integer("run", "0" if text is None else text)
    if not 0 <= index < len(runs):
        raise InfoGANError(f"run {index} does not exist: this explorer shows runs 0..{len(runs) - 1}")
    run = runs[index]
    if run.model is None:
        raise InfoGANError(f"{run.name} could not be loaded: {run.error}")
    return run.model


def parse_seed(text: str | None) -> int:
    seed = _integer("seed", "0" if text is None else text)
    if not 0 <= seed <= MAX_SEED:
        raise InfoGANError(f"seed must be a whole number from 0 to {MAX_SEED}; got {seed}")
    return seed


def parse_codes(query: Mapping[str, str], model: InfoGAN) -> dict[str, float | int]:
    """The codes a query fixes (every key that is not one of QUERY_KEYS names a code); codes it
    leaves out are drawn from their priors with the seed."""
    codes: dict[str, float | int] = {}
    for name, text in query.items():
        if name in QUERY_KEYS:
            continue
        kind, index = model.spec.locate(name)
        value = _number(name, text)
        if kind == "categorical":
            size = model.spec.categorical[index]
            if not value.is_integer() or not 0 <= value < size:
                raise InfoGANError(f"code {name} is categorical with values 0..{size - 1}; got {text}")
            codes[name] = int(value)
        else:
            if abs(value) > MAX_CODE:
                raise InfoGANError(
                    f"code {name} = {text} is out of range: continuous codes go from -{MAX_CODE:g} to {MAX_CODE:g}"
                )
            codes[name] = value
    return codes


def parse_sweep(query: Mapping[str, str], model: InfoGAN) -> tuple[str, list[float | int]]:
    """The code a traversal sweeps and its values: every value of a categorical code, or `steps`
    values from `low` to `high` of a continuous one."""
    name = query.get("code")
    if not name:
        raise InfoGANError("a traversal needs the code to sweep, e.g. code=c2")
    kind, index = model.spec.locate(name)
    if kind == "categorical":
        return name, list(range(model.spec.categorical[index]))
    steps = _integer("steps", query.get("steps", "10"))
    low, high = _number("low", query.get("low", "-2")), _number("high", query.get("high", "2"))
    check_sweep((low, high), steps)
    return name, torch.linspace(low, high, steps).tolist()


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InfoGANError(f"{name} must be a number; got {text!r}") from None
    if not math.isfinite(value):
        raise InfoGANError(f"{name} must be a finite number; got {text!r}")
    return value


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InfoGANError(f"{name} must be a whole number; got {text!r}") from None


# -- images ----------------------------------------------------------------------------------


def image_png(model: InfoGAN, codes: dict[str, float | int], seed: int) -> bytes:
    """The image `model.generate(1, codes, seed=seed)`, as PNG."""
    return png_bytes(model.generate(1, codes, seed=seed)[0])


def traversal_png(model: InfoGAN, codes: dict[str, float | int], seed: int, name: str, values: list) -> bytes:
    """One row of images, PNG: the image of `image_png` with code `name` set to each value."""
    base = model.sample_latent(1, codes, torch.Generator().manual_seed(seed))
    row = [model.spec.with_codes(base, {name: value}) for value in values]
    latent = Latent(*(torch.cat([getattr(r, part) for r in row]) for part in ("noise", "categorical", "continuous")))
    images = model.generate_from(latent)
    return png_bytes(grid(images, columns=len(values))[: images.shape[1]])  # grid makes grey images RGB


class _Upload(io.BytesIO):
    """An uploaded file's bytes, named in messages as the file the user chose."""

    def __init__(self, payload: bytes, filename: str):
        super().__init__(payload)
        self.label = repr(filename) if filename else "the upload"

    def __str__(self) -> str:
        return self.label

    __repr__ = __str__


def encode_upload(runs: list[ExploredRun], payload: bytes, filename: str) -> dict:
    """Q's codes for an uploaded image under every loaded model, with the image as the first
    model sees it (its channels, its size) as a PNG data URL."""
    if not payload:
        raise InfoGANError("the upload is empty: choose a PNG or JPEG image")
    results, preview = [], None
    for run in runs:
        if run.model is None:
            results.append({"error": run.error})
            continue
        model = run.model
        pixels = read_image(
            _Upload(payload, filename), model.config.model.image_channels, model.config.model.image_size
        )
        images = torch.tensor(pixels[None])  # a copy: the decoded array is read-only
        if preview is None:
            preview = png_bytes(images[0].float() / 255.0)
        codes = model.encode(images)
        results.append({"codes": {name: _plain(model, name, value[0]) for name, value in codes.items()}})
    return {"preview": "data:image/png;base64," + base64.b64encode(preview).decode("ascii"), "runs": results}


def _plain(model: InfoGAN, name: str, value: torch.Tensor) -> float | int:
    return int(value) if model.spec.locate(name)[0] == "categorical" else float(value)
