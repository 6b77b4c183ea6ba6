"""Metrics of a trained model: clustering quality of categorical codes and information bounds."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, mutual_info_score, normalized_mutual_info_score

from .api import InfoGAN
from .losses import categorical_info_losses, continuous_info_losses


def cluster_metrics(predicted: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy under the best one-to-one matching of clusters to classes (Hungarian), NMI, ARI.

    The confusion matrix has clusters as rows and classes as columns; `mapping[k]` is the class
    matched to cluster k (-1 when there are more clusters than classes and k is left over).
    """
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
    """Per code, measured on fresh generated samples: for categorical codes H(c), CE and the
    lower bound H(c) - CE on I(c; G(z, c)); for continuous codes the info loss under the
    model's convention and, for Gaussian conventions, the bound H(c) - NLL."""
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
    for i, name in enumerate(spec.continuous_names):
        entry = {"loss": float(cont[i]), "convention": kind}
        if kind != "squared_error":
            entry["mi_lower_bound"] = spec.continuous_entropy() - float(cont[i])
        result[name] = entry
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


def discretize(values: np.ndarray, bins: int = 20) -> np.ndarray:
    """Equal-width bins over each column's own range (as disentanglement_lib's MIG does)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        column = values[:, j]
        edges = np.histogram_bin_edges(column, bins=bins)
        out[:, j] = np.digitize(column, edges[1:-1])
    return out


def mutual_information_gap(codes: np.ndarray, factors: np.ndarray, categorical: int = 0, bins: int = 20) -> dict:
    """MIG (Chen et al. 2018): for each ground-truth factor, the gap between the two codes that
    share the most information with it, divided by the factor's entropy; averaged over factors.

    codes: (N, n_codes), the first `categorical` columns are category indices (used as they are),
    the rest continuous (discretized into `bins` equal-width bins). factors: (N, n_factors)
    integer factor indices; factors with a single value carry no information and are skipped.
    Returns the score, each factor's normalised gap and the (n_factors, n_codes) MI matrix in nats.
    """
    codes = np.asarray(codes)
    factors = np.asarray(factors, dtype=np.int64)
    if codes.shape[1] < 2:
        raise ValueError("MIG needs at least two codes: it compares the best two per factor")
    discrete = np.concatenate(
        [codes[:, :categorical].astype(np.int64), discretize(codes[:, categorical:], bins)], axis=1
    )
    info = np.array(
        [[mutual_info_score(factors[:, k], discrete[:, j]) for j in range(discrete.shape[1])]
         for k in range(factors.shape[1])]
    )  # fmt: skip
    gaps = []
    for k in range(factors.shape[1]):
        entropy = mutual_info_score(factors[:, k], factors[:, k])
        if entropy <= 0:
            gaps.append(None)
            continue
        top = np.sort(info[k])[::-1]
        gaps.append(float((top[0] - top[1]) / entropy))
    scored = [g for g in gaps if g is not None]
    return {"mig": float(np.mean(scored)) if scored else 0.0, "per_factor": gaps, "mutual_information": info.tolist()}
