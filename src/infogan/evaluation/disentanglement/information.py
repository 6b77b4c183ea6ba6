"""Discretised mutual information between codes and factors, and the mutual information gap."""

from __future__ import annotations

import numpy as np


def discretize(values: np.ndarray, bins: int = 20) -> np.ndarray:
    """Equal-width bins over each column's own range (as disentanglement_lib's MIG does)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        column = values[:, j]
        edges = np.histogram_bin_edges(column, bins=bins)
        out[:, j] = np.digitize(column, edges[1:-1])
    return out


def mutual_information_matrix(discrete: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(n_factors, n_codes) mutual information in nats between discrete codes and factors."""
    from sklearn.metrics import mutual_info_score  # here: scikit-learn would slow every command's start

    return np.array(
        [[mutual_info_score(factors[:, k], discrete[:, j]) for j in range(discrete.shape[1])]
         for k in range(factors.shape[1])]
    )  # fmt: skip


def mutual_information_gap(codes: np.ndarray, factors: np.ndarray, categorical: int = 0, bins: int = 20) -> dict:
    """MIG (Chen et al. 2018): for each ground-truth factor, the gap between the two codes that
    share the most information with it, divided by the factor's entropy; averaged over factors.

    codes: (N, n_codes), the first `categorical` columns are category indices (used as they are),
    the rest continuous (discretized into `bins` equal-width bins). factors: (N, n_factors)
    integer factor indices; factors with a single value carry no information and are skipped.
    Returns the score, each factor's normalised gap and the (n_factors, n_codes) MI matrix in nats.
    """
    from sklearn.metrics import mutual_info_score

    codes = np.asarray(codes)
    factors = np.asarray(factors, dtype=np.int64)
    if codes.shape[1] < 2:
        raise ValueError("MIG needs at least two codes: it compares the best two per factor")
    discrete = np.concatenate(
        [codes[:, :categorical].astype(np.int64), discretize(codes[:, categorical:], bins)], axis=1
    )
    info = mutual_information_matrix(discrete, factors)
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
