"""Clustering over training: accuracy, NMI and ARI of every kept checkpoint of runs.

For each run directory (trained by `infogan train`, on one process or under torchrun), each
checkpoint whose step is a multiple of `--every` is loaded as `infogan evaluate` loads a model
(batch-norm statistics recomputed from generated batches) and every categorical code is scored
on the held-out labelled split (default: test) of the run's data set, after Hungarian matching
of its values to the classes. Prints one line per checkpoint, a summary per run (the first step
at or above each `--thresholds` accuracy, the lowest accuracy from then on, the last point) and
writes everything to `--out` (JSON).

    python benchmarks/clustering_curve.py /work/runs/ddp2-mnist-fast-s0-syncfalse --every 500 \
        --out benchmarks/results/scaling-cpu/mnist-fast-2ranks-s0.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import infogan
import infogan.checkpoint as ckpt
from infogan.data import load_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dsprites_curve import checkpoints, step_of  # noqa: E402
from mnist import machine_info  # noqa: E402


def score(path: Path, images: torch.Tensor, labels: torch.Tensor) -> dict:
    model = infogan.load(path)
    codes = model.encode(images)
    point = {"step": step_of(path), "checkpoint": str(path)}
    for name in model.spec.categorical_names:
        metrics = infogan.cluster_metrics(codes[name].numpy(), labels.numpy())
        point[name] = {key: round(metrics[key], 4) for key in ("accuracy", "nmi", "ari")}
    return point


def summarise(points: list[dict], code: str, thresholds: list[float]) -> dict:
    summary = {"code": code, "last": points[-1][code] | {"step": points[-1]["step"]}}
    for threshold in thresholds:
        reached = [i for i, p in enumerate(points) if p[code]["accuracy"] >= threshold]
        first = reached[0] if reached else None
        summary[f"{threshold:.2f}"] = (
            None
            if first is None
            else {
                "first_step": points[first]["step"],
                "lowest_after": min(p[code]["accuracy"] for p in points[first:]),
            }
        )
    return summary


def run_config(run: Path):
    return ckpt.load_model(ckpt.latest_checkpoint(run)).config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--every", type=int, default=500, help="score checkpoints whose step is a multiple of this")
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.90, 0.95])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    record = {"command": "python " + " ".join(sys.argv), "machine": machine_info("cpu", args.threads), "runs": {}}
    for run in args.runs:
        config = run_config(run)
        images, labels = load_split(config.data.dataset, args.split, args.data_dir)
        points = []
        for path in checkpoints(run, args.every):
            start = time.perf_counter()
            points.append(score(path, images, labels))
            figures = " ".join(f"{k} {v['accuracy']:.4f}" for k, v in points[-1].items() if isinstance(v, dict))
            print(f"{run.name} step {points[-1]['step']}: {figures} ({time.perf_counter() - start:.0f} s)", flush=True)
        code = config.latent.categorical_names[0]
        record["runs"][run.name] = {
            "run": str(run),
            "dataset": config.data.dataset,
            "split": args.split,
            "world_size": config.distributed.world_size,
            "sync_batchnorm": config.distributed.sync_batchnorm,
            "seed": config.seed,
            "summary": summarise(points, code, args.thresholds),
            "curve": points,
        }
        print(json.dumps(record["runs"][run.name]["summary"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
