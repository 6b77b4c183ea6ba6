"""What each code of a model was matched to, read from the `evaluation.json` that `infogan
evaluate` writes: "c1 (digit)" style titles, the class matched to each categorical value, and
each code's information bound. `infogan curves`, `infogan traverse` and the explorer use these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from infogan.core.latent import LatentSpec
from infogan.errors import InfoGANError
from infogan.evaluation.report import read_report, report_path

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DSPRITES_SHAPES = ("square", "ellipse", "heart")
DIGITS = tuple(str(d) for d in range(10))

# data set -> (what its labels are, the name of each label index)
CLASS_NAMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "mnist": ("digit", DIGITS),
    "svhn": ("digit", DIGITS),
    "fashion-mnist": ("class", FASHION_MNIST_CLASSES),
    "dsprites": ("shape", DSPRITES_SHAPES),
}


@dataclass(frozen=True)
class CodeLabel:
    """What is known about one code: the factors it was matched to (the labels' kind for a
    categorical code scored against them; for dSprites, the factors whose most informative code
    it is under MIG), the class matched to each value of a categorical code ("" where none),
    its matching accuracy, and its information bound and entropy in nats."""

    name: str
    factors: tuple[str, ...] = ()
    values: tuple[str, ...] | None = None
    accuracy: float | None = None
    bound: float | None = None
    entropy: float | None = None

    @property
    def title(self) -> str:
        return f"{self.name} ({', '.join(self.factors)})" if self.factors else self.name

    def value_title(self, value: int) -> str:
        """A categorical value with its matched class, e.g. "3 (7)"."""
        matched = self.values[value] if self.values and 0 <= value < len(self.values) else ""
        return f"{value} ({matched})" if matched else str(value)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "factors": list(self.factors),
            "values": None if self.values is None else list(self.values),
            "accuracy": self.accuracy,
            "bound": self.bound,
            "entropy": self.entropy,
        }


@dataclass(frozen=True)
class RunLabels:
    """The labels of every code of one model, and a note when evaluation.json was missing,
    unreadable or written for another step of the run."""

    codes: dict[str, CodeLabel]
    note: str | None = None

    def titles(self) -> dict[str, str]:
        return {name: label.title for name, label in self.codes.items()}


def read_labels(model_path: str | Path, spec: LatentSpec, dataset: str, step: int | None = None) -> RunLabels:
    """The labels of a model's codes from the evaluation.json beside it; plain code names (and
    a note saying why) when there is none or it cannot be used. `step`, when given, is the
    model's step: an evaluation of another step is used, with a note saying so."""
    plain = RunLabels({name: CodeLabel(name) for name in spec.code_names})
    try:
        path = report_path(model_path)
    except InfoGANError as exc:  # nothing at that path (a model the caller got elsewhere)
        return RunLabels(plain.codes, str(exc))
    if not path.is_file():
        return RunLabels(plain.codes, f"no {path.name} beside the model: run `infogan evaluate` to label the codes")
    try:
        evaluation = read_report(model_path)
        labels = code_labels(spec, dataset, evaluation)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, IndexError) as exc:
        return RunLabels(plain.codes, f"{path} cannot be used ({exc}); run `infogan evaluate` again")
    evaluated = evaluation.get("step")
    if step is not None and isinstance(evaluated, int) and evaluated != step:
        note = f"{path.name} was written at step {evaluated}; the model is at step {step} (run `infogan evaluate`)"
        return RunLabels(labels, note)
    return RunLabels(labels)


def code_labels(spec: LatentSpec, dataset: str, evaluation: dict) -> dict[str, CodeLabel]:
    """Labels of every code of `spec` from a parsed evaluation.json; raises ValueError (or
    KeyError, TypeError) when its content does not fit the model."""
    kind, class_names = CLASS_NAMES.get(dataset, ("class", ()))
    clustering = evaluation.get("clustering") or {}
    information = evaluation.get("information") or {}
    by_mig = _factors_by_mig(evaluation.get("disentanglement") or {})
    labels = {}
    for name in spec.code_names:
        factors: list[str] = []
        values = accuracy = None
        if name in clustering:
            size = spec.categorical[spec.locate(name)[1]]
            mapping = [int(k) for k in clustering[name]["mapping"]]
            if len(mapping) > size:
                raise ValueError(f"its mapping for {name} has {len(mapping)} values; the model's {name} has {size}")
            mapping += [-1] * (size - len(mapping))  # values Q never predicted on the test images
            values = tuple(_class_name(class_names, k) for k in mapping)
            accuracy = _number(clustering[name].get("accuracy"))
            factors.append(kind)
        factors += [f for f in by_mig.get(name, []) if f not in factors]
        info = information.get(name) or {}
        labels[name] = CodeLabel(
            name,
            tuple(factors),
            values,
            accuracy,
            _number(info.get("mi_lower_bound")),
            _number(info.get("entropy")),
        )
    return labels


def _factors_by_mig(disentanglement: dict) -> dict[str, list[str]]:
    """code name -> the ground-truth factors for which it is the most informative code."""
    if not disentanglement:
        return {}
    codes, factors = disentanglement["code_names"], disentanglement["factor_names"]
    info, gaps = disentanglement["mutual_information"], disentanglement["per_factor"]
    matched: dict[str, list[str]] = {}
    for factor, row, gap in zip(factors, info, gaps):
        if gap is None:  # a factor with one value carries no information
            continue
        best = max(range(len(codes)), key=lambda j: row[j])
        matched.setdefault(codes[best], []).append(factor)
    return matched


def _class_name(names: tuple[str, ...], index: int) -> str:
    if index < 0:
        return ""
    return names[index] if index < len(names) else str(index)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)
