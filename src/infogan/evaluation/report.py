"""`evaluate_run()`: a model's evaluation report, and the files it is kept in.

    MODEL/evaluation.json   clustering of the categorical codes on held-out labelled images,
                            information bounds, the sample-quality score, and on dSprites the
                            disentanglement metrics under named protocols
    MODEL/factors.npz       dSprites only: ground-truth factors beside the predicted codes

For an export folder the files go in the folder; for a .safetensors file, beside it; a shipped
model's folder (`infogan.shipped`) is read, never written. This
module owns those paths: `infogan evaluate` writes through it and the explorer, `traverse` and
`curves` read through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from infogan.config import parse_override
from infogan.data import data_folder, dsprites, has_labels, load_evaluation_set
from infogan.errors import InfoGANError
from infogan.evaluation.disentanglement import METRICS, PROTOCOLS, Protocol
from infogan.evaluation.measures import (
    cached_representation,
    codes_from_matrix,
    evaluate,
    evaluate_disentanglement_of,
    factor_gaps,
    factors_file,
)
from infogan.fileio import to_stderr, write_output
from infogan.model import InfoGAN, load
from infogan.shipped import is_shipped, resolve

REPORT_NAME = "evaluation.json"
FACTORS_NAME = "factors.npz"
PROTOCOL_CHOICES = ("both", *PROTOCOLS, "none")

Log = Callable[[str], None]


def report_path(model_path: str | Path) -> Path:
    """Where the report of a run directory, export folder, .safetensors file or shipped model
    (by its name) is kept."""
    model_path = resolve(model_path)
    return model_path / REPORT_NAME if model_path.is_dir() else model_path.with_name(REPORT_NAME)


def report_target(model_path: str | Path) -> Path:
    """Where `infogan evaluate` writes a model's report when not told: `report_path`. A shipped
    model has none: its folder is part of the installed package, so an InfoGANError asks for
    --out (its own report is read from there, and its card has the figures)."""
    if is_shipped(resolve(model_path)):
        raise InfoGANError(
            f"{model_path} is a model shipped with infogan, whose folder is not written to: give --out FILE.json "
            f"for the report (the shipped evaluation is in its card: infogan models {model_path})"
        )
    return report_path(model_path)


def factors_path(report: str | Path) -> Path:
    """The dSprites factors file that goes with a report."""
    return Path(report).with_name(FACTORS_NAME)


def read_report(model_path: str | Path) -> dict:
    """The report kept beside a model, parsed. Raises OSError when it cannot be read and
    ValueError when it is not a JSON object."""
    report = json.loads(report_path(model_path).read_text(encoding="utf-8"))
    if not isinstance(report, dict):
        raise ValueError("it does not hold a JSON object")
    return report


def evaluate_run(
    model: str | Path | InfoGAN,
    *,
    split: str = "test",
    samples: int = 10000,
    limit: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    quality_samples: int = 10000,
    data_dir: str | Path | None = None,
    protocol: str | None = None,
    metrics: Sequence[str] | None = None,
    protocol_options: Sequence[str] = (),
    device: str = "auto",
    log: Log | None = None,
) -> dict:
    """Evaluate a model, write its report and return it (the same as `infogan evaluate`).

    `model` is a run directory, export folder or .safetensors file (the report goes beside it
    unless `out` names a file), or an `InfoGAN` or a shipped model's name (then `out` is needed
    to write anything: the installed package is never written to).
    Clustering of each categorical code is scored on the labelled `split` (test by default;
    the first `limit` images when given); information bounds on `samples` fresh samples; the
    sample-quality score on `quality_samples` generated images (0 skips it). The data is looked
    for in `data_dir`, else in the folder the run recorded, then as usual. On dSprites the
    disentanglement metrics are scored under `protocol` ("both", "disentanglement_lib",
    "infogan_cr" or "none"), for `metrics` (default all), with `protocol_options` such as
    "factor_vae_train=500"; `factors.npz` is written beside the report. `log` receives
    progress lines (default: standard error).
    """
    log = log or to_stderr
    loaded = model if isinstance(model, InfoGAN) else load(model, device)
    data_dir = data_folder(data_dir, loaded.config.runtime.data_dir)  # one given wins over the run's
    protocols = choose_protocols(loaded, protocol, metrics, protocol_options)
    report, factors, codes, disentanglement = _measure(loaded, split, samples, limit, seed, data_dir, protocols,
                                                       metrics, log)  # fmt: skip
    report["quality"] = quality_section(loaded, quality_samples, seed, data_dir)
    target = Path(out) if out is not None else _default_target(model)
    if factors is not None:
        if target is not None:
            write_output(factors_path(target), factors_file(loaded, codes, factors))
        report["labels"] = "shape"  # the clustering's labels: dSprites' one categorical factor
        if disentanglement is None:  # protocol none: MIG of the clustering images' codes only
            disentanglement = factor_gaps(loaded, codes, factors, dsprites.FACTOR_NAMES)
        report["disentanglement"] = disentanglement
    if target is not None:
        write_output(target, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
    return report


def _default_target(model: str | Path | InfoGAN) -> Path | None:
    """Where a report goes without `out`: beside a model given by its path; nowhere for an
    `InfoGAN` or a shipped model (the installed package is not written to)."""
    if isinstance(model, InfoGAN) or is_shipped(resolve(model)):
        return None
    return report_path(model)


def _measure(model, split, samples, limit, seed, data_dir, protocols, metrics, log):
    """The report's measured sections, dSprites' factors (or None), the codes Q predicted and
    the disentanglement metrics (None unless scored under a protocol)."""
    images = labels = factors = codes = disentanglement = None
    if has_labels(model.config.data):
        size = limit or 10000
        images, labels, factors = load_evaluation_set(model.config.data, split, data_dir, size, seed)
        images, labels = images[: limit or None], labels[: limit or None]
        if protocols:  # dSprites: Q reads each image once, the clustering images' codes included
            cache = cached_representation(model)
            names = " and ".join(p.name for p in protocols)
            log(f"dSprites: disentanglement metrics under {names}; Q reads each image at most once (minutes)")
            disentanglement = evaluate_disentanglement_of(model, protocols, metrics, seed, cache=cache, progress=log)
            codes = codes_from_matrix(model, cache.codes_of(factors[: len(images)]))
        else:
            codes = model.encode(images)
    report = {"split": split, **evaluate(model, images, labels, samples, seed, codes)}
    return report, factors, codes, disentanglement


def choose_protocols(
    model: InfoGAN, protocol: str | None, metrics: Sequence[str] | None, options: Sequence[str]
) -> list[Protocol]:
    """The protocols the disentanglement metrics are scored under: on dSprites those of
    `protocol` (default both) with `options` applied; none elsewhere."""
    if protocol is not None and protocol not in PROTOCOL_CHOICES:
        raise InfoGANError(f"--protocol {protocol!r} is not one of {', '.join(PROTOCOL_CHOICES)}")
    unknown_metrics = [name for name in metrics or () if name not in METRICS]
    if unknown_metrics:
        raise InfoGANError(f"{unknown_metrics[0]!r} is not one of {', '.join(METRICS)}")
    if model.config.data.dataset != "dsprites":
        given = [flag for flag, value in (("--protocol", protocol), ("--metrics", metrics),
                                          ("--protocol-set", options)) if value]  # fmt: skip
        if given and protocol != "none":
            raise InfoGANError(
                f"{given[0]} needs ground-truth factors, which only dSprites has here; "
                f"this model was trained on {model.config.data.dataset}"
            )
        return []
    choice = protocol or "both"
    if choice == "none":
        return []
    changes = dict(parse_override(text) for text in options)
    unknown = sorted(set(changes) - (set(PROTOCOLS["infogan_cr"].to_dict()) - {"name"}))
    if unknown:
        raise InfoGANError(
            f"--protocol-set: {unknown[0]!r} is not an option of infogan.evaluation.disentanglement.Protocol"
        )
    chosen = []
    for name in PROTOCOLS if choice == "both" else [choice]:
        try:
            chosen.append(PROTOCOLS[name].replace(**changes))
        except ValueError as exc:
            raise InfoGANError(f"--protocol-set: {exc}") from None
    return chosen


def quality_section(model: InfoGAN, samples: int, seed: int, data_dir: str | Path | None) -> dict:
    """The sample-quality score of the report, or {"score": None, "note": why not}."""
    from infogan.evaluation.quality import LABELLED_DATASETS, quality_score

    dataset = model.config.data.dataset
    if samples == 0:
        return {"score": None, "note": "skipped (--quality-samples 0)"}
    if dataset not in LABELLED_DATASETS:
        return {"score": None, "note": f"{dataset} has no labelled training split to train a feature classifier on"}
    if samples < 2:
        raise InfoGANError("--quality-samples must be 0 (skip) or 2 or more (a covariance needs two samples)")
    try:
        return quality_score(model, samples, seed, data_dir)
    except InfoGANError as exc:  # no classifier cached (the message says how to train one), or a damaged one
        return {"score": None, "note": str(exc)}
