"""Where the time of one training step goes: PyTorch's profiler over a few steps, per operator
and input shape, with each matrix product's and convolution's achieved GFLOP/s.

    python benchmarks/profile_step.py --threads 2 --batch-size 128 [--precision bf16] [--out profile.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from infogan.config import resolve_config
from infogan.data import load_split
from infogan.training.loop import Trainer
from infogan.training.memory import reuse_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist import machine_info  # noqa: E402
from throughput import _step, matmul_peak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mnist")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    reuse_freed_memory()
    config = resolve_config(
        args.preset, None, [f"optim.batch_size={args.batch_size}", f"runtime.precision={args.precision}"]
    )
    images, _ = load_split(config.data.dataset, "train", args.data_dir)
    trainer = Trainer(config, images[:20000], progress=False)
    for step in range(5):
        _step(trainer, step)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
        for step in range(args.steps):
            _step(trainer, step)
    events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    total_ms = sum(e.self_cpu_time_total for e in events) / 1000 / args.steps
    rows = []
    for event in events[: args.rows]:
        ms = event.self_cpu_time_total / 1000 / args.steps
        gflops = event.flops / args.steps / (ms / 1000) / 1e9 if event.flops and ms else None
        rows.append({"op": event.key, "shapes": str(event.input_shapes), "ms_per_step": round(ms, 2),
                     "calls_per_step": event.count / args.steps, "gflops": gflops and round(gflops, 1)})  # fmt: skip
    peak = matmul_peak("cpu") / 1e9
    print(f"{total_ms:.0f} ms of operator time per step; fp32 matmul peak {peak:.0f} GFLOP/s")
    for row in rows:
        rate = f"{row['gflops']:7.1f} GFLOP/s" if row["gflops"] else " " * 15
        print(f"{row['ms_per_step']:7.2f} ms {rate}  {row['op']:32s} {row['shapes'][:90]}")
    if args.out:
        report = {"command": "python " + " ".join(sys.argv), "machine": machine_info("cpu", torch.get_num_threads()),
                  "precision": args.precision, "fp32_matmul_peak_gflops": round(peak, 1),
                  "operator_ms_per_step": round(total_ms, 1), "top": rows}  # fmt: skip
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
