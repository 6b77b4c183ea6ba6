"""Metrics of a trained model: clustering quality of categorical codes and information bounds."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from .api import InfoGAN
from .disentanglement import discretize, mutual_information_gap  # noqa: F401 (re-exported)
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
