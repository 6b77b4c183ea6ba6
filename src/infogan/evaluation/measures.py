"""Metrics of a trained model: clustering quality of categorical codes, information bounds, and
on dSprites the disentanglement metrics under named protocols."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from infogan.core.losses import categorical_info_losses, continuous_info_losses
from infogan.errors import InfoGANError
from infogan.evaluation.disentanglement import (  # noqa: F401 (discretize re-exported)
    GroundTruth,
    Protocol,
    discretize,
    dsprites_truth,
    evaluate_disentanglement,
    mutual_information_gap,
    representation_of,
    resolve_protocol,
)
from infogan.evaluation.disentanglement.cached import CachedRepresentation
from infogan.evaluation.disentanglement.sources import sample_codes
from infogan.model import InfoGAN

BOTH = ("disentanglement_lib", "infogan_cr")


def cluster_metrics(predicted: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy under the best one-to-one matching of clusters to classes (Hungarian), NMI, ARI.

    The confusion matrix has clusters as rows and classes as columns; `mapping[k]` is the class
    matched to cluster k (-1 when there are more clusters than classes and k is left over).
    """
    from scipy.optimize import linear_sum_assignment  # SciPy and scikit-learn are imported where used:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # they slow every command's start

    predicted = np.asarray(predicted, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    clusters = int(max(predicted.max(initial=0), 0)) + 1
    classes = int(labels.max(initial=0)) + 1
    confusion = np.zeros((clusters, classes), dtype=np.int64)
    np.add.at(confusion, (predicted, labels), 1)
    rows, cols = linear_sum_assignment(-confusion)
    mapping = np.full(clusters, -1, dtype=np.int64)
    mapping[rows] = cols
    return {
        "accuracy": float(confusion[rows, cols].sum() / max(len(labels), 1)),
        "nmi": float(normalized_mutual_info_score(labels, predicted)),
        "ari": float(adjusted_rand_score(labels, predicted)),
        "mapping": mapping.tolist(),
        "confusion": confusion.tolist(),
    }


def information_bounds(model: InfoGAN, samples: int = 10000, seed: int = 0) -> dict[str, dict]:
    """Lower bounds on I(c; G(z, c)) per code, in nats, on fresh generated samples.

    Categorical codes: H(c) - CE of Q's logits. Continuous codes: H(c) - E[-log q(c | x)] for a
    Gaussian q centred on Q's mean with the one std that fits best (sqrt of the mean squared
    error), which is a valid bound whatever the training convention; the training loss under
    the model's convention is reported beside it (under fixed_std that loss includes the
    constant 0.5 log(2 pi) and H(c) minus it is no bound, which is why it is not reported so).
    """
    generator = torch.Generator().manual_seed(seed)
    latent = model.sample_latent(samples, generator=generator)
    q = model.q_output(model.generate_from(latent))
    spec, kind = model.spec, model.config.loss.continuous_info
    ce = categorical_info_losses(q.categorical_logits, latent.categorical)
    cont = continuous_info_losses(q.continuous_mean, q.continuous_log_std, latent.continuous, kind)
    result: dict[str, dict] = {}
    for i, name in enumerate(spec.categorical_names):
        entropy = spec.categorical_entropy()[i]
        result[name] = {"entropy": entropy, "cross_entropy": float(ce[i]), "mi_lower_bound": entropy - float(ce[i])}
    squared_error = (q.continuous_mean.float() - latent.continuous).pow(2).mean(dim=0)
    for i, name in enumerate(spec.continuous_names):
        entropy = spec.continuous_entropy()
        nll = 0.5 * math.log(2 * math.pi * math.e * max(float(squared_error[i]), 1e-12))
        result[name] = {
            "entropy": entropy,
            "mean_squared_error": float(squared_error[i]),
            "mi_lower_bound": entropy - nll,
            "loss": float(cont[i]),
            "convention": kind,
        }
    return result


def evaluate(
    model: InfoGAN,
    images: torch.Tensor | None,
    labels: torch.Tensor | None,
    samples: int = 10000,
    seed: int = 0,
    codes: dict[str, torch.Tensor] | None = None,
) -> dict:
    """Clustering metrics of every categorical code on labelled images (use the test split),
    plus information bounds on `samples` fresh samples. Without images and labels, only the
    information bounds. `codes`, when given, are `model.encode(images)` computed already."""
    clustering = {}
    if images is not None and labels is not None:
        codes = model.encode(images) if codes is None else codes
        for name in model.spec.categorical_names:
            clustering[name] = cluster_metrics(codes[name].numpy(), labels.numpy())
    return {
        "step": model.step,
        "images": 0 if labels is None else int(len(labels)),
        "clustering": clustering,
        "information": information_bounds(model, samples, seed),
    }


def code_matrix(model: InfoGAN, codes: dict[str, torch.Tensor]) -> np.ndarray:
    """Predicted codes as one (N, n_codes) float array, in the model's code order."""
    return np.stack([codes[name].float().numpy() for name in model.spec.code_names], axis=1)


def factor_gaps(model: InfoGAN, codes: dict[str, torch.Tensor], factors: np.ndarray, factor_names) -> dict:
    """MIG of the predicted codes against ground-truth factor indices (N, n_factors), with the
    names of both; empty when the model has fewer than two codes (MIG compares two)."""
    if len(model.spec.code_names) < 2:
        return {}
    mig = mutual_information_gap(code_matrix(model, codes), factors, categorical=len(model.spec.categorical))
    return {"factor_names": list(factor_names), "code_names": model.spec.code_names, **mig}


def factors_file(model: InfoGAN, codes: dict[str, torch.Tensor], factors: np.ndarray) -> bytes:
    """dSprites' ground-truth factors beside the predicted codes of the same images, as .npz
    bytes: factors (N, 5) indices, factor_values, factor_names, codes (N, n_codes), code_names."""
    import io

    from infogan.data import dsprites

    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        factors=factors,
        factor_values=dsprites.factor_values(np.ravel_multi_index(factors.T, dsprites.FACTOR_SIZES)),
        factor_names=np.array(dsprites.FACTOR_NAMES),
        codes=code_matrix(model, codes),
        code_names=np.array(model.spec.code_names),
    )
    return buffer.getvalue()


# -- disentanglement of a model on a ground truth ----------------------------------------------


def cached_representation(model: InfoGAN, truth: GroundTruth | None = None, batch_size: int = 1000):
    """The model's Q over a finite ground truth (default dSprites), each image encoded at most
    once (`CachedRepresentation`); dSprites only for models trained on it."""
    if truth is None:
        if model.config.data.dataset != "dsprites":
            raise InfoGANError(
                f"the model was trained on {model.config.data.dataset}, which has no ground-truth factors; "
                "the disentanglement metrics need dSprites (or a GroundTruth of your own)"
            )
        truth = dsprites_truth()
    return CachedRepresentation(representation_of(model, batch_size), truth, chunk=4 * batch_size)


def evaluate_disentanglement_of(
    model: InfoGAN,
    protocols: str | Protocol | Sequence[str | Protocol] = BOTH,
    metrics: Sequence[str] | None = None,
    seed: int = 0,
    truth: GroundTruth | None = None,
    cache: CachedRepresentation | None = None,
    progress: Callable[[str], Any] | None = None,
) -> dict:
    """The disentanglement metrics of a model's Q on a ground truth (default: dSprites, for a
    model trained on it) under each named protocol, every image encoded at most once.

    protocols: "disentanglement_lib", "infogan_cr", "both", a Protocol (e.g. one with smaller
    sizes) or a list of them. metrics: names of `infogan.evaluation.disentanglement.METRICS` (default all).
    cache: a `cached_representation(model)` to share (the CLI reads the codes of its clustering
    images from it). progress: called with a line as each protocol ends.

    Returns a JSON-ready dict: protocols (per protocol name, the result of
    `evaluate_disentanglement` plus encoded, the images Q read for it that earlier protocols had
    not, and total_seconds), matching (which code explains which factor, see
    `code_factor_matching`), mig, per_factor and mutual_information of that matching's draws
    (the MIG layout `infogan explore` reads), factor_names, code_names, encoded (images Q read in
    all) and encode_seconds.
    """
    chosen = _protocol_list(protocols)
    if cache is None:
        cache = cached_representation(model, truth)
    results = {}
    for protocol in chosen:
        encoded, start = cache.encoded, time.perf_counter()
        result = evaluate_disentanglement(cache, cache.truth, protocol, seed, metrics)
        result["encoded"] = cache.encoded - encoded
        result["total_seconds"] = round(time.perf_counter() - start, 2)
        results[protocol.name] = result
        if progress is not None:
            progress(f"{protocol.name}: {result['total_seconds']:.0f} s, {result['encoded']:,} more images read by Q")
    code_names = list(model.spec.code_names)
    matching = code_factor_matching(cache, cache.truth, chosen[0], seed, code_names)
    gaps = matching.pop("mig")
    return {
        "factor_names": list(cache.truth.factor_names),
        "code_names": code_names,
        "mig": gaps["mig"],
        "per_factor": gaps["per_factor"],
        "mutual_information": gaps["mutual_information"],
        "matching": matching,
        "protocols": results,
        "encoded": cache.encoded,
        "encode_seconds": round(cache.seconds, 2),
    }


def _protocol_list(protocols) -> list[Protocol]:
    if protocols == "both":
        protocols = BOTH
    if isinstance(protocols, (str, Protocol)):
        protocols = [protocols]
    try:
        chosen = [resolve_protocol(p) for p in protocols]
    except ValueError as exc:
        raise InfoGANError(str(exc)) from None
    names = [p.name for p in chosen]
    if not chosen or len(set(names)) != len(names):
        raise InfoGANError(f"give each protocol once, one or more of them; got {names}")
    return chosen


def code_factor_matching(
    represent, truth: GroundTruth, protocol: str | Protocol, seed: int = 0, code_names: Sequence[str] | None = None
) -> dict:
    """Which code best explains which factor, from the mutual information matrix MIG uses: the
    protocol's MIG draws (the same draws as its MIG when seeded alike), codes in its bins.

    `represent` is a representation function over `truth` (for a CachedRepresentation, its
    `.truth`). Normalised information is I(code; factor) / H(factor).
    Returns protocol, samples, bins, normalized_information (n_factors, n_codes), factors (per
    factor: the code with the most information about it, its normalised information and the
    factor's MIG gap), codes (per code: the factor it explains best, normalised, with the
    runner-up) and mig (the full MIG result of those draws).
    """
    from sklearn.metrics import mutual_info_score

    p = resolve_protocol(protocol)
    codes, factors = sample_codes(represent, truth, p.mig_samples, np.random.default_rng(seed), p.chunk)
    gaps = mutual_information_gap(codes, factors, bins=p.bins)
    info = np.asarray(gaps["mutual_information"])
    entropy = np.array([mutual_info_score(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])
    normalized = np.divide(info, entropy[:, None], out=np.zeros_like(info), where=entropy[:, None] > 0)
    names = list(code_names) if code_names is not None else [f"c{j + 1}" for j in range(codes.shape[1])]
    factor_names = list(truth.factor_names)
    by_factor = {}
    for k, factor in enumerate(factor_names):
        best = int(np.argmax(info[k]))
        by_factor[factor] = {"code": names[best], "normalized_information": float(normalized[k, best]),
                             "gap": gaps["per_factor"][k]}  # fmt: skip
    by_code = {}
    for j, code in enumerate(names):
        order = np.argsort(-normalized[:, j], kind="stable")
        by_code[code] = {
            "factor": factor_names[order[0]],
            "normalized_information": float(normalized[order[0], j]),
            "runner_up": factor_names[order[1]],
            "runner_up_information": float(normalized[order[1], j]),
        }
    return {
        "protocol": p.name,
        "samples": p.mig_samples,
        "bins": p.bins,
        "normalized_information": normalized.tolist(),
        "factors": by_factor,
        "codes": by_code,
        "mig": gaps,
    }


def codes_from_matrix(model: InfoGAN, matrix: np.ndarray) -> dict[str, torch.Tensor]:
    """A representation's (N, n_codes) codes as `model.encode` gives them: categorical codes as
    int64 indices, continuous codes as float32."""
    n_cat = len(model.spec.categorical)
    codes = {}
    for j, name in enumerate(model.spec.code_names):
        column = torch.from_numpy(np.ascontiguousarray(matrix[:, j]))
        codes[name] = column.long() if j < n_cat else column.float()
    return codes
