"""Feature classifiers on disk: one safetensors file per data set in the user cache, its facts
(data set, test accuracy, training settings, architecture hash, weights checksum) as JSON in the
file's metadata. Written atomically; checked on load, so a damaged file or one made for another
data set or by another version is refused with a message that says how to replace it."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from infogan.data import cache_dir
from infogan.errors import InfoGANError
from infogan.evaluation.quality.network import ARCHITECTURE_VERSION, FeatureClassifier, architecture_hash
from infogan.fileio import write_bytes_atomically

FORMAT = "infogan-feature-classifier"
METADATA_KEY = "infogan_feature_classifier"


class MissingClassifierError(InfoGANError):
    """No feature classifier is cached for a data set (train one with the command in the message)."""


def classifier_path(dataset: str) -> Path:
    """Where the feature classifier of `dataset` is cached."""
    return cache_dir() / "quality" / f"{dataset}-classifier.safetensors"


def train_command(dataset: str) -> str:
    return f"infogan quality-net train --dataset {shlex.quote(dataset)}"


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_classifier(network: FeatureClassifier, metadata: dict[str, Any], path: str | Path) -> Path:
    """Write `network` and `metadata` (plus format, version, architecture hash and weights
    checksum) to `path` atomically."""
    path = Path(path)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in network.state_dict().items()}
    meta = {
        **metadata,
        "format": FORMAT,
        "architecture_version": ARCHITECTURE_VERSION,
        "architecture_hash": architecture_hash(network),
        "weights_sha256": weights_digest(state),
    }
    try:
        write_bytes_atomically(path, save(state, metadata={METADATA_KEY: json.dumps(meta)}))
    except (OSError, SafetensorError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise InfoGANError(f"cannot write the feature classifier to {path}: {reason}") from None
    return path


def load_feature_classifier(
    dataset: str, path: str | Path | None = None, device: str | torch.device = "cpu"
) -> FeatureClassifier:
    """The feature classifier of `dataset` from `path` (default: the cache), checked; its test
    accuracy and training facts are in `.metadata`. Raises MissingClassifierError when there is
    no file, InfoGANError when it is damaged, made for another data set or by another version."""
    path = Path(path) if path is not None else classifier_path(dataset)
    retrain = f"train a new one with `{train_command(dataset)} --force`"
    if not path.is_file():
        raise MissingClassifierError(
            f"no feature classifier for {dataset} at {path}; train one with `{train_command(dataset)}`"
        )
    meta, state = _read(path, retrain)
    _check_facts(meta, dataset, path, retrain)
    network = FeatureClassifier(meta["image_shape"][0], meta["classes"], meta["feature_dim"])
    if meta.get("architecture_version") != ARCHITECTURE_VERSION or meta.get("architecture_hash") != architecture_hash(
        network
    ):
        raise InfoGANError(
            f"{path} was made for another version of the feature classifier (architecture "
            f"{meta.get('architecture_hash')}, this version is {architecture_hash(network)}); {retrain}"
        )
    expected = {name: tuple(t.shape) for name, t in network.state_dict().items()}
    if {name: tuple(t.shape) for name, t in state.items()} != expected or weights_digest(state) != meta.get(
        "weights_sha256"
    ):
        raise InfoGANError(f"{path} is damaged: its weights do not match their checksum; {retrain}")
    network.load_state_dict(state)
    network.metadata = {**meta, "path": str(path)}
    return network.to(device).eval()


def _read(path: Path, retrain: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            text = (handle.metadata() or {}).get(METADATA_KEY)
            state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InfoGANError(f"cannot read {path}: damaged or not a safetensors file ({exc}); {retrain}") from None
    try:
        meta = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InfoGANError(f"{path} is not an infogan feature classifier (no {FORMAT} metadata); {retrain}")
    return meta, state


def _check_facts(meta: dict[str, Any], dataset: str, path: Path, retrain: str) -> None:
    if meta.get("dataset") != dataset:
        raise InfoGANError(
            f"{path} holds the feature classifier of {meta.get('dataset')!r}, not {dataset!r}; {retrain}"
        )
    shape, classes, width = meta.get("image_shape"), meta.get("classes"), meta.get("feature_dim")
    well_formed = (
        isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(v, int) and v > 0 for v in shape)
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 100000 for v in (classes, width))
        and isinstance(meta.get("test_accuracy"), (int, float))
    )
    if not well_formed:
        raise InfoGANError(
            f"{path} has damaged metadata (image_shape, classes, feature_dim or test_accuracy); {retrain}"
        )
