"""The Frechet distance between the Gaussian fits of two sets of feature vectors (the distance
FID computes in Inception's feature space), in float64."""

from __future__ import annotations

import warnings

import numpy as np

from infogan.errors import InfoGANError

# Imaginary parts of sqrt(S_a S_b) above this fraction of its largest real entry are not rounding
# error: the covariances are not positive semi-definite and the distance is undefined.
IMAGINARY_TOLERANCE = 1e-3
JITTER = 1e-6  # added to both diagonals (times their mean variance) when sqrtm fails on singular products


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) of (N, D) features, in float64, N >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise InfoGANError(f"features must be an (N, D) array with N >= 2, got shape {features.shape}")
    if not np.isfinite(features).all():
        raise InfoGANError("features hold NaN or infinite values; the images they come from are not finite")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to (N_a, D) and (N_b, D) features:
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))."""
    mean_a, cov_a = gaussian_fit(features_a)
    mean_b, cov_b = gaussian_fit(features_b)
    if mean_a.shape != mean_b.shape:
        raise InfoGANError(f"features of different widths: {mean_a.shape[0]} and {mean_b.shape[0]}")
    return frechet_from_moments(mean_a, cov_a, mean_b, cov_b)


def frechet_from_moments(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """The Frechet distance between N(mean_a, cov_a) and N(mean_b, cov_b), never below 0."""
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    root = _sqrt_product(cov_a, cov_b)
    diff = mean_a - mean_b
    distance = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))
    return max(distance, 0.0)  # a tiny negative value is rounding error


def _sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> np.ndarray:
    """The real part of sqrt(cov_a @ cov_b), after checking its imaginary part is rounding error."""
    root = _sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # singular product: retry with both diagonals raised a little
        offset = JITTER * max(float(np.trace(cov_a) + np.trace(cov_b)) / (2 * len(cov_a)), 1e-12)
        eye = np.eye(len(cov_a))
        root = _sqrtm((cov_a + offset * eye) @ (cov_b + offset * eye))
    if np.iscomplexobj(root):
        scale = max(float(np.abs(root.real).max()), 1e-12)
        if np.abs(root.imag).max() > IMAGINARY_TOLERANCE * scale:
            raise InfoGANError(
                "the matrix square root of the covariance product has a large imaginary part "
                f"({np.abs(root.imag).max():.3g} against entries up to {scale:.3g}): the covariances are "
                "not positive semi-definite (too few samples for the feature width?)"
            )
        root = root.real
    return root


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    from scipy import linalg  # here: SciPy would slow every command's start

    with warnings.catch_warnings():  # singular products warn; the result is checked by the caller
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(matrix)
