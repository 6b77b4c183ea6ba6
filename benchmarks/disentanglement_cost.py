"""Cost of the disentanglement metrics at each protocol's full sizes, on dSprites' factor grid.

Times `evaluate_disentanglement` under each protocol at its reference sizes and prints the
seconds per metric. The representation is identity-like: the observations of dSprites' factor
grid are the factor values themselves (shape index, scale, orientation, pos_x, pos_y) followed
by `--noise` N(0, 1) columns, and the representation returns them, so the timing is that of
the metrics' own sampling and fitting, not of rendering images or running a network. Each
metric reports how many observations it draws, and each protocol how many went through the
representation (draws shared by metrics count once); `--model-rate` measures how many 64x64
images per second the Q network of an untrained `dsprites`-preset model encodes here, and the
JSON adds the seconds such a model would spend representing them.

    python benchmarks/disentanglement_cost.py --threads 2 --model-rate \
        --out benchmarks/results/disentanglement-metrics/cost-cpu.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from infogan.config import resolve_config
from infogan.core.networks import build_networks
from infogan.evaluation.disentanglement import PROTOCOLS, dsprites_truth, evaluate_disentanglement, representation_of
from infogan.model import InfoGAN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist import machine_info  # noqa: E402


def identity_truth(noise: int, seed: int = 0):
    """dSprites' factor grid whose observations are the factor values plus `noise` N(0, 1) columns."""
    truth = dsprites_truth(packed=np.empty((0, 512), dtype=np.uint8))  # the images are never read
    rng = np.random.default_rng(seed)

    def observe(factors: np.ndarray) -> np.ndarray:
        return np.column_stack([truth.values(factors), rng.normal(size=(len(factors), noise))])

    return dataclasses.replace(truth, observe=observe)


def model_rate(images: int = 4096, seed: int = 0) -> float:
    """Images per second that an untrained dsprites-preset model's Q encodes (64x64, CPU)."""
    config = resolve_config("dsprites")
    torch.manual_seed(seed)
    generator, discriminator = build_networks(config.model, config.latent)
    represent = representation_of(InfoGAN(config, generator, discriminator, calibrate=False))
    batch = (torch.rand(images, 1, 64, 64) < 0.1).to(torch.uint8) * 255
    represent(batch[:256])  # warm-up
    start = time.perf_counter()
    represent(batch)
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    parser.add_argument("--noise", type=int, default=5, help="pure-noise code columns after the 5 factors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model-rate", action="store_true", help="also time a dsprites-preset Q on 64x64 images")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    record = {
        "command": "python " + " ".join([sys.argv[0], *sys.argv[1:]]),
        "machine": {"name": "2-core CPU", **machine_info("cpu", args.threads)},
        "representation": f"identity: 5 dSprites factor values + {args.noise} N(0, 1) noise columns",
        "protocols": {},
    }
    rate = model_rate() if args.model_rate else None
    if rate is not None:
        record["model_images_per_s"] = round(rate, 1)
        print(f"dsprites-preset Q encodes {rate:.0f} images/s")
    for name in args.protocols:
        start = time.perf_counter()
        truth = identity_truth(args.noise, args.seed)
        result = evaluate_disentanglement(lambda observations: observations, truth, name, args.seed)
        total = time.perf_counter() - start
        observations = {metric: out["observations"] for metric, out in result["metrics"].items()}
        entry = {
            "at_reference_sizes": result["at_reference_sizes"],
            "seconds": result["seconds"],
            "total_seconds": round(total, 1),
            "observations": observations,
            "represented": result["represented"],
            "summary": {key: round(value, 4) for key, value in result["summary"].items()},
        }
        if rate is not None:
            entry["estimated_model_seconds"] = round(result["represented"] / rate)
        record["protocols"][name] = entry
        print(f"{name} ({total:.1f} s in all; {result['represented']:,} observations represented)")
        for metric, seconds in result["seconds"].items():
            print(f"  {metric:24s} {seconds:8.1f} s  {observations[metric]:>9,} observations")
        print("  " + ", ".join(f"{k} {v:.3f}" for k, v in entry["summary"].items()))
        if rate is not None:
            print(f"  a dsprites-preset Q would add about {entry['estimated_model_seconds']:,} s to represent them")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
