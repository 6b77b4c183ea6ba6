"""Training the feature classifier once on a data set's training split, scored on its test split."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from infogan.data import IDX_DATASETS, load_split, load_svhn
from infogan.errors import InfoGANError
from infogan.evaluation.quality.network import ARCHITECTURE_VERSION, FEATURE_DIM, FeatureClassifier, architecture_hash
from infogan.evaluation.quality.store import classifier_path, save_classifier
from infogan.runtime import resolve_device

LABELLED_DATASETS = (*IDX_DATASETS, "svhn")


def labelled_split(dataset: str, split: str, data_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (N, C, H, W), int64 labels (N,)) of the train or test split of `dataset`."""
    if dataset == "svhn":
        return load_svhn(split, data_dir)
    if dataset not in IDX_DATASETS:
        raise InfoGANError(
            f"{dataset} has no labelled train and test split to train a feature classifier on; "
            f"the quality score is available for {', '.join(LABELLED_DATASETS)}"
        )
    return load_split(dataset, split, data_dir)


def train_feature_classifier(
    dataset: str,
    epochs: int = 4,
    seed: int = 0,
    limit: int | None = None,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    data_dir: str | Path | None = None,
    path: str | Path | None = None,
    save: bool = True,
    overwrite: bool = False,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = None,
) -> FeatureClassifier:
    """Train the feature classifier of `dataset` on its training split (the first `limit` images
    when given), measure its accuracy on the test split and, with `save`, write it to `path`
    (default: the user cache; an existing file is refused unless `overwrite`).

    Adam with a cosine learning-rate decay to 0; batches drawn by a generator seeded with `seed`,
    which also seeds the initial weights, on `device` ("auto", "cpu", "cuda[:N]"). Facts about
    the run are in `network.metadata`. The same as `infogan quality-net train`.
    """
    if epochs < 1 or batch_size < 1 or (limit is not None and limit < 1):
        raise InfoGANError(f"epochs, batch size and limit must be 1 or more (got {epochs}, {batch_size}, {limit})")
    device = resolve_device(device)  # "auto" too; one that cannot be used fails before any data is read
    target = Path(path) if path is not None else classifier_path(dataset)
    if save and target.exists() and not overwrite:
        raise InfoGANError(
            f"{target} holds a feature classifier already; scores made with different classifiers do not "
            "compare, so replace it only on purpose (--force)"
        )
    images, labels = labelled_split(dataset, "train", data_dir)
    images, labels = images[:limit], labels[:limit]
    test_images, test_labels = labelled_split(dataset, "test", data_dir)
    classes = int(max(labels.max(), test_labels.max())) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = FeatureClassifier(images.shape[1], classes, FEATURE_DIM).to(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    _fit(network, images, labels, epochs, batch_size, learning_rate, seed, log)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    accuracy = network.accuracy(test_images, test_labels)
    network.metadata = {
        "dataset": dataset,
        "test_accuracy": accuracy,
        "test_images": len(test_labels),
        "train_images": len(labels),
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "classes": classes,
        "image_shape": list(images.shape[1:]),
        "feature_dim": FEATURE_DIM,
        "architecture_version": ARCHITECTURE_VERSION,
        "architecture_hash": architecture_hash(network),
        "train_seconds": round(seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),  # CPU time of all this process's threads
        "torch": torch.__version__,
    }
    if save:
        save_classifier(network, network.metadata, target)
        network.metadata["path"] = str(target)
    return network.eval()


def _fit(network, images, labels, epochs, batch_size, learning_rate, seed, log) -> None:
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    batches = math.ceil(len(labels) / batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / (epochs * batches)))
    )
    rng = torch.Generator().manual_seed(seed)
    network.train()
    for epoch in range(1, epochs + 1):
        total, seen = 0.0, 0
        for index in torch.randperm(len(labels), generator=rng).split(batch_size):
            x, y = images[index].to(network.device), labels[index].to(network.device)
            loss = F.cross_entropy(network(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total, seen = total + float(loss.detach()) * len(index), seen + len(index)
        if log is not None:
            log(f"epoch {epoch}/{epochs}: training loss {total / seen:.4f}")
