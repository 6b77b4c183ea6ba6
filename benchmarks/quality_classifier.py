"""The feature classifiers of the sample-quality score: train them on the full training splits,
report test accuracy and time, and the score's floor (real test images against real training
images) beside what noise and blank images score.

    python benchmarks/quality_classifier.py --threads 1 --save \
        --out benchmarks/results/quality-score/quality-classifier.json

With --save the classifiers go into the user cache (replacing any there), where `infogan
evaluate` finds them; --from-cache measures the cached ones again without training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from infogan.evaluation.quality import (
    frechet_distance,
    labelled_split,
    load_feature_classifier,
    train_feature_classifier,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist import machine_info  # noqa: E402


def floors(network, dataset: str, data_dir, references: int, seed: int) -> dict:
    """Scores against the test split's features of: real training images (at several set sizes,
    since the Frechet distance of finite samples is biased upwards as sets shrink), noise, blank
    and pixel-shuffled images; and of two halves of the test split against each other (in random
    order, and in file order: MNIST's first 5,000 test digits come from other writers than the
    last 5,000)."""
    test, _ = labelled_split(dataset, "test", data_dir)
    train, _ = labelled_split(dataset, "train", data_dir)
    rng = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(train), generator=rng)[:references]
    test_features, train_features = network.embed(test), network.embed(train[pick])
    scores = {
        f"train_images_{n}": frechet_distance(test_features, train_features[:n])
        for n in sorted({1000, 2000, 5000, references})
        if n <= references
    }
    synthetic = {
        "uniform_noise": (torch.rand(references, *test.shape[1:], generator=rng) * 255).to(torch.uint8),
        "blank_black": torch.zeros(references, *test.shape[1:], dtype=torch.uint8),
        "shuffled_pixels": _shuffle_pixels(train[pick], rng),
    }
    scores.update({name: frechet_distance(test_features, network.embed(images)) for name, images in synthetic.items()})
    half = len(test) // 2
    shuffled = test_features[torch.randperm(len(test), generator=rng).numpy()]
    halves = {
        "random_halves": frechet_distance(shuffled[:half], shuffled[half:]),
        "first_vs_second_half": frechet_distance(test_features[:half], test_features[half:]),
    }
    return {
        "reference": f"the {len(test)} test images",
        "images_per_set": references,
        "scores": scores,
        "test_halves": {"images_per_half": half, "scores": halves},
    }


def _shuffle_pixels(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    flat = images.flatten(1)
    order = torch.randperm(flat.shape[1], generator=rng)
    return flat[:, order].reshape(images.shape)


def _classifier(dataset: str, args) -> tuple:
    """The classifier of `dataset`, trained now (with the time taken) or from the cache."""
    if args.from_cache:
        network = load_feature_classifier(dataset)
        return network, dict(network.metadata)
    start, cpu_start = time.perf_counter(), time.process_time()
    network = train_feature_classifier(
        dataset,
        epochs=args.epochs,
        seed=args.seed,
        data_dir=args.data_dir,
        save=args.save,
        overwrite=True,
        log=lambda line: print(f"{dataset}: {line}", flush=True),
    )
    return network, {
        **network.metadata,
        "total_seconds": round(time.perf_counter() - start, 1),  # with loading and the test accuracy
        "total_cpu_seconds": round(time.process_time() - cpu_start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--references", type=int, default=10000, help="images per compared set in the floors")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--save", action="store_true", help="write the classifiers into the user cache")
    parser.add_argument(
        "--from-cache", action="store_true", help="measure the cached classifiers (their training facts) only"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quality-score/quality-classifier.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for dataset in args.datasets:
        network, row = _classifier(dataset, args)
        meta = network.metadata
        print(
            f"{dataset}: test accuracy {meta['test_accuracy']:.4f} after {meta['epochs']} epochs, "
            f"{meta['train_seconds']} s training ({meta['train_cpu_seconds']} s CPU)",
            flush=True,
        )
        row["floors"] = floors(network, dataset, args.data_dir, args.references, args.seed)
        for group in (row["floors"], row["floors"]["test_halves"]):
            for name, score in group["scores"].items():
                print(f"{dataset}: {name}: {score:.3f}", flush=True)
        rows.append(row)
    result = {"machine": machine_info("cpu", args.threads), "command": " ".join(sys.argv), "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
