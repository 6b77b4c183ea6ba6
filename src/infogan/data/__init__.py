"""Data sets: IDX files (MNIST, Fashion-MNIST) held in memory as uint8 tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from infogan.config import DataConfig, ModelConfig
from infogan.data import dsprites
from infogan.data.folder import load_image_folder
from infogan.data.idx import parse_idx, read_idx, uncompressed_sha256
from infogan.data.sources import IDX_DATASETS, cache_dir, data_folder, download_file, find_file, locate, search_roots
from infogan.data.svhn import FILES as SVHN_FILES
from infogan.data.svhn import load_svhn
from infogan.errors import InfoGANError


def load_split(
    name: str, split: str = "train", data_dir: str | Path | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 1, H, W), labels int64 (N,)) of one split, verified against checksums."""
    images_path, labels_path = locate(name, split, data_dir, download)
    known = IDX_DATASETS[name].sha256
    images = read_idx(images_path, known[images_path.name.removesuffix(".gz")])
    labels = read_idx(labels_path, known[labels_path.name.removesuffix(".gz")])
    return _as_tensors(images, labels, f"{images_path} and {labels_path}")


def has_labels(data: DataConfig) -> bool:
    """Whether the data set has labels to evaluate clustering against."""
    return data.dataset != "folder"


def load_training_images(data: DataConfig, model: ModelConfig, data_dir: str | Path | None = None):
    """The training images a config asks for, checked against the network: a uint8 tensor
    (N, C, H, W), or for dSprites the bit-packed images that unpack batch by batch."""
    if data.dataset == "folder":
        return load_image_folder(data.path, model.image_channels, model.image_size, data.on_bad_file)
    if data.dataset == "dsprites":
        check_images_fit(torch.empty(0, 1, dsprites.IMAGE_SIZE, dsprites.IMAGE_SIZE), model, "dsprites")
        return dsprites.PackedImages(dsprites.load_packed(cache_dir() / "dsprites"))
    if data.dataset == "svhn":
        images, _ = load_svhn("train", data_dir)
    else:
        images, _ = load_split(data.dataset, "train", data_dir)
    check_images_fit(images, model, data.dataset)
    return images


def training_files(data: DataConfig, data_dir: str | Path | None = None) -> dict | None:
    """Where the training files of an IDX data set or SVHN are, looked up as they were read
    (call it after reading them): {"dataset", "folder" (absolute: the one holding the images),
    "files": [{"path", "bytes" (on disk), "uncompressed_sha256"}]}. None for other data sets."""
    if data.dataset in IDX_DATASETS:
        known = IDX_DATASETS[data.dataset].sha256
        paths = list(locate(data.dataset, "train", data_dir, download=False))
        digests = [known[path.name.removesuffix(".gz")] for path in paths]  # verified when read
    elif data.dataset == "svhn":
        path = find_file("svhn", SVHN_FILES["train"], search_roots(data_dir))
        if path is None:
            return None
        paths, digests = [path], [uncompressed_sha256(path)]
    else:
        return None
    files = [
        {"path": str(path.parent.resolve() / path.name), "bytes": path.stat().st_size, "uncompressed_sha256": digest}
        for path, digest in zip(paths, digests)
    ]
    return {"dataset": data.dataset, "folder": str(paths[0].parent.resolve()), "files": files}


def load_evaluation_set(
    data: DataConfig, split: str = "test", data_dir: str | Path | None = None, size: int = 10000, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
    """Labelled images to evaluate on: (images, labels, factors or None).

    IDX data sets give their split. dSprites has no split: it gives `size` images drawn at random
    (seeded) with the shape as label and all five ground-truth factors.
    """
    if data.dataset == "dsprites":
        indices = np.sort(np.random.default_rng(seed).choice(dsprites.COUNT, size, replace=False))
        packed = dsprites.load_packed(cache_dir() / "dsprites")
        factors = dsprites.factors(indices)
        return dsprites.unpack(packed[indices]), torch.from_numpy(factors[:, 0].copy()), factors
    if data.dataset == "svhn":
        images, labels = load_svhn(split, data_dir)
        return images, labels, None
    if data.dataset not in IDX_DATASETS:
        raise InfoGANError(f"{data.dataset} has no labels to evaluate against")
    images, labels = load_split(data.dataset, split, data_dir)
    return images, labels, None


def check_images_fit(images: torch.Tensor, model: ModelConfig, source: str) -> None:
    expected = (model.image_channels, model.image_size, model.image_size)
    if tuple(images.shape[1:]) != expected:
        raise InfoGANError(
            f"{source} images are {'x'.join(map(str, images.shape[1:]))} but the network makes "
            f"{'x'.join(map(str, expected))}; set model.image_channels and model.image_size "
            "(or the architecture) to match"
        )


def _as_tensors(images: np.ndarray, labels: np.ndarray, source: str) -> tuple[torch.Tensor, torch.Tensor]:
    if images.ndim != 3 or labels.ndim != 1:
        raise InfoGANError(f"{source}: expected (N, H, W) images and (N,) labels")
    if images.shape[0] != labels.shape[0]:
        raise InfoGANError(f"{source}: {images.shape[0]} images but {labels.shape[0]} labels")
    image_tensor = torch.from_numpy(images.copy()).unsqueeze(1)
    return image_tensor, torch.from_numpy(labels.astype(np.int64))


__all__ = [
    "IDX_DATASETS",
    "check_images_fit",
    "has_labels",
    "dsprites",
    "load_evaluation_set",
    "load_image_folder",
    "load_training_images",
    "cache_dir",
    "data_folder",
    "download_file",
    "load_split",
    "load_svhn",
    "locate",
    "parse_idx",
    "read_idx",
    "search_roots",
    "training_files",
]
