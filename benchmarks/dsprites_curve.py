"""Disentanglement over training: the metrics of every kept checkpoint of dSprites runs.

For each run directory, each checkpoint whose step is a multiple of `--every` is loaded and its
Q scored with the disentanglement metrics (`infogan.evaluation.disentanglement`) under a named protocol.
Images are encoded once each (`CachedRepresentation`), so a checkpoint costs one encode of the
images the protocol draws plus the metrics' own fitting. `--quick` shrinks the protocol's sample
sizes to 10,000 (the result then says `at_reference_sizes: false`), for a curve that is cheap to
draw during training. Prints one line per checkpoint and writes every result to `--out` (JSON);
with `--plot` also a PNG of FactorVAE and MIG against steps (needs matplotlib).

    python benchmarks/dsprites_curve.py /work/runs/dsprites-s0 --every 2000 --protocol infogan_cr \
        --metrics factor_vae mig --out benchmarks/results/dsprites/curve-s0.json --plot curve.png
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
from infogan.evaluation.disentanglement import (
    METRICS,
    PROTOCOLS,
    dsprites_truth,
    evaluate_disentanglement,
    representation_of,
)
from infogan.evaluation.disentanglement.cached import CachedRepresentation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist import machine_info  # noqa: E402

QUICK_SIZES = {
    "factor_vae_variance_samples": 10000,
    "mig_samples": 10000,
    "dci_train": 10000,
    "sap_train": 10000,
    "modularity_train": 10000,
}


def step_of(path: Path) -> int:
    return int(path.stem.split("-")[-1])


def checkpoints(run_dir: Path, every: int) -> list[Path]:
    return [p for p in ckpt.checkpoint_paths(run_dir) if step_of(p) % every == 0]


def score(path: Path, truth, protocol, metrics: list[str], seed: int) -> dict:
    model = infogan.load(path)
    cached = CachedRepresentation(representation_of(model), truth)
    start = time.perf_counter()
    result = evaluate_disentanglement(cached, cached.truth, protocol, seed=seed, metrics=metrics)
    return {
        "step": step_of(path),
        "checkpoint": str(path),
        "summary": result["summary"],
        "protocol": result["protocol"],
        "at_reference_sizes": result["at_reference_sizes"],
        "encoded": cached.encoded,
        "seconds": round(time.perf_counter() - start, 1),
    }


def plot(curves: dict[str, list[dict]], path: Path, protocol: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ("factor_vae", "mig") if any(n in p["summary"] for c in curves.values() for p in c)]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for run, points in curves.items():
            ax.plot([p["step"] for p in points], [p["summary"][name] for p in points], marker="o", label=run)
        ax.set_xlabel("step")
        ax.set_title(f"{name} ({protocol} protocol)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--every", type=int, default=1000, help="score checkpoints whose step is a multiple of this")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="infogan_cr")
    parser.add_argument("--metrics", nargs="+", choices=sorted(METRICS), default=["factor_vae", "mig"])
    parser.add_argument("--quick", action="store_true", help="sample sizes of 10,000 instead of the protocol's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    protocol = PROTOCOLS[args.protocol]
    if args.quick:
        protocol = protocol.replace(**{k: min(v, getattr(protocol, k)) for k, v in QUICK_SIZES.items()})
    truth = dsprites_truth()
    curves: dict[str, list[dict]] = {}
    for run in args.runs:
        curves[run.name] = []
        for path in checkpoints(run, args.every):
            point = score(path, truth, protocol, args.metrics, args.seed)
            curves[run.name].append(point)
            figures = " ".join(f"{k}={v:.3f}" for k, v in point["summary"].items())
            print(f"{run.name} step {point['step']}: {figures} ({point['seconds']} s)", flush=True)
    record = {
        "protocol": protocol.to_dict(),
        "quick": args.quick,
        "metrics": args.metrics,
        "seed": args.seed,
        "machine": machine_info("cpu", args.threads),
        "command": "python " + " ".join(sys.argv),
        "curves": curves,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    if args.plot:
        plot(curves, args.plot, args.protocol)


if __name__ == "__main__":
    main()
