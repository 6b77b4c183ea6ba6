"""Metrics of a trained model: clustering quality of categorical codes and information bounds."""

from __future__ import annotations

import math

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

    from .data import dsprites

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
