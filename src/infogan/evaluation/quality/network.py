"""The feature classifier: a small CNN whose penultimate layer is the feature space of the
sample-quality score (a Frechet distance, like FID but with a network trained on the data set's
own training split instead of Inception on ImageNet)."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

# Bump when the network or what its features mean changes: cached files of an older version are
# refused on load (scores from two versions are not comparable).
ARCHITECTURE_VERSION = 1
FEATURE_DIM = 128


class FeatureClassifier(nn.Module):
    """Three 3x3 conv layers (32, 64, 128 channels, batch norm, ReLU, each halving the size; the last one
    average-pooled to 3x3), a fully connected feature layer and a linear classifier on its ReLU.

    Input: images in [0, 1] (floats) or [0, 255] (uint8), (N, C, H, W) of any size of 12 or more.
    The features are the feature layer's output before its ReLU (dense, closer to Gaussian than
    rectified values).
    """

    def __init__(self, channels: int = 1, classes: int = 10, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(3),
            nn.Flatten(),
            nn.Linear(128 * 3 * 3, feature_dim),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(feature_dim, classes))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, feature_dim) features of a batch of images."""
        images = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        return self.trunk((images - 0.5) / 0.5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, classes) logits."""
        return self.head(self.features(images))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch_size: int = 100) -> np.ndarray:
        """Features of all `images`, in eval mode and batches, as a float64 (N, feature_dim) array."""
        self.eval()
        parts = [self.features(chunk.to(self.device)).cpu() for chunk in images.split(batch_size)]
        return torch.cat(parts).double().numpy()

    @torch.no_grad()
    def accuracy(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 100) -> float:
        """Fraction of `images` classified as their `labels`."""
        self.eval()
        right = 0
        for chunk, truth in zip(images.split(batch_size), labels.split(batch_size)):
            right += int((self(chunk.to(self.device)).argmax(dim=1).cpu() == truth).sum())
        return right / max(len(labels), 1)


def architecture_hash(network: FeatureClassifier) -> str:
    """SHA-256 (first 16 hex digits) of the version and the network's layer list: it changes
    whenever the layers, their sizes or the version do."""
    text = f"infogan-feature-classifier v{ARCHITECTURE_VERSION}\n{network!r}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
