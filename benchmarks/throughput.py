"""Training throughput per preset and batch size, with FLOPs, fraction of matmul peak and memory.

For each (preset, batch size) a fresh process trains a few warm-up steps, then times --steps
steps. It reports images/s, the FLOPs of one training step per image (counted with
torch.utils.flop_counter: convolutions and matrix products, forward and backward), the
achieved FLOP/s, that as a fraction of the fp32 matrix-multiply peak measured in the same run,
peak memory (peak RSS on CPU, max allocated on CUDA) and page faults per step.

    python benchmarks/throughput.py --threads 2 --out benchmarks/results/throughput-cpu/throughput-cpu.json

Variants (--variants): `library` is the package as `infogan train` runs it; the others change
one thing: `d-two-passes` (D on the real and generated batch in two calls, not one joined
pass), `malloc-default` / `bf16-malloc-default` (without `infogan.reuse_freed_memory`),
`adam-loop` / `adam-foreach` / `adam-fused` (Adam implementation), `channels-last`, and the
options `bf16` (--precision bf16), `compile` (--compile), `bf16-compile`, and on CUDA
`eager` / `bf16-eager` (--no-cuda-graphs) and `cuda-graphs` / `bf16-cuda-graphs` (--cuda-graphs;
on CUDA the library's default, so the same as `library` / `bf16` there).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from infogan.config import resolve_config
from infogan.data import load_split
from infogan.training.loop import Trainer
from infogan.training.memory import reuse_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist import machine_info  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: str, size: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Best matrix-multiply rate in FLOP/s (of `dtype`) over a few timed products."""
    dev = torch.device(device)
    a = torch.randn(size, size, device=dev, dtype=dtype)
    b = torch.randn(size, size, device=dev, dtype=dtype)
    best = 0.0
    for _ in range(3):
        torch.mm(a, b)
    for _ in range(repeats):
        _sync(dev)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(dev)
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


VARIANTS = (
    "library",
    "d-two-passes",
    "malloc-default",
    "bf16-malloc-default",
    "adam-loop",
    "adam-foreach",
    "adam-fused",
    "channels-last",
    "bf16",
    "compile",
    "bf16-compile",
    "cuda-graphs",
    "bf16-cuda-graphs",
    "eager",
    "bf16-eager",
)
# Trainer options behind the variants that are options of the package (--precision, --compile).
TRAINER_OPTIONS = {
    "bf16": {"precision": "bf16"},
    "compile": {"compile": True},
    "bf16-compile": {"precision": "bf16", "compile": True},
    "bf16-malloc-default": {"precision": "bf16"},
    "cuda-graphs": {"cuda_graphs": "on"},
    "bf16-cuda-graphs": {"precision": "bf16", "cuda_graphs": "on"},
    "eager": {"cuda_graphs": "off"},
    "bf16-eager": {"precision": "bf16", "cuda_graphs": "off"},
}


def apply_variant(trainer: Trainer, variant: str) -> None:
    """Switch one implementation detail that should not change what a step computes."""
    if variant.startswith("adam-"):
        flag = {
            "adam-loop": {"foreach": False, "fused": False},
            "adam-foreach": {"foreach": True},
            "adam-fused": {"fused": True},
        }[variant]
        for name, old in trainer.optimizers.named().items():
            group = old.param_groups[0]
            new = torch.optim.Adam(group["params"], lr=group["lr"], betas=group["betas"], **flag)
            setattr(trainer.optimizers, name, new)
    elif variant == "d-two-passes":  # the D step as two calls (real, then generated) instead of one joined pass
        discriminator = trainer.discriminator

        def two_passes(real: torch.Tensor, fake: torch.Tensor):
            real_logits, _ = discriminator(real, with_q=False)
            fake_logits, q = discriminator(fake)
            return real_logits, fake_logits, q

        discriminator.forward_real_fake = two_passes
    elif variant == "channels-last":
        trainer.generator.to(memory_format=torch.channels_last)
        trainer.discriminator.to(memory_format=torch.channels_last)
    elif variant not in ("library", "malloc-default") and variant not in TRAINER_OPTIONS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")


def peak_rss_bytes() -> int:
    """Peak resident memory of this process's own address space.

    /proc/self/status VmHWM where there is one: on Linux, ru_maxrss of a process started by
    spawn (fork, then exec) begins at the RSS its parent had when it forked, so it would charge
    the parent's memory to the child.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _step(trainer: Trainer, step: int) -> dict[str, torch.Tensor]:
    latent = trainer.spec.sample(trainer.config.optim.batch_size, trainer.latent_rng, trainer.device)
    return trainer.train_on(trainer.batches.batch(step), latent)


def count_step_flops(trainer: Trainer) -> int:
    """FLOPs of one float32 training step (convolutions and matrix products, both passes)."""
    _step(trainer, 0)
    counter = FlopCounterMode(display=False)
    with counter:
        _step(trainer, 1)
    return counter.get_total_flops()


def _flops_per_step(job: dict) -> int:
    config = resolve_config(job["preset"], None, [f"optim.batch_size={job['batch_size']}", *job["overrides"]])
    images, _ = load_split(config.data.dataset, "train", job["data_dir"])
    config = config.replace(**{"runtime.device": job["device"]})
    return count_step_flops(Trainer(config, images[: 4 * job["batch_size"]], progress=False))


def measure(job: dict) -> dict:
    """Time one (preset, batch size) in this process; returns the figures."""
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    if not job["variant"].endswith("malloc-default"):  # as `infogan train` does
        reuse_freed_memory()
    overrides = [f"optim.batch_size={job['batch_size']}", *job["overrides"]]
    config = resolve_config(job["preset"], None, overrides)
    images, _ = load_split(config.data.dataset, "train", job["data_dir"])
    options = {"device": job["device"], **TRAINER_OPTIONS.get(job["variant"], {})}
    config = config.replace(**{f"runtime.{key}": value for key, value in options.items()})
    trainer = Trainer(config, images[:20000], progress=False)
    device = trainer.device
    batch = config.optim.batch_size
    apply_variant(trainer, job["variant"])

    def one_step(step: int) -> dict[str, torch.Tensor]:
        return _step(trainer, step)

    for step in range(job["warmup"] + 1):
        one_step(step)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for step in range(job["steps"]):
        one_step(job["warmup"] + 1 + step)
    _sync(device)
    seconds = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    achieved = job["flops_per_step"] * job["steps"] / seconds
    memory = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else peak_rss_bytes()
    return {
        "preset": job["preset"],
        "variant": job["variant"],
        "overrides": job["overrides"],
        "batch_size": batch,
        "images_per_s": round(batch * job["steps"] / seconds, 1),
        "ms_per_step": round(1000 * seconds / job["steps"], 2),
        "flops_per_image": job["flops_per_step"] / batch,
        "achieved_gflops": round(achieved / 1e9, 2),
        "peak_memory_mb": round(memory / 2**20, 1),
        "memory_kind": "max allocated (CUDA)" if device.type == "cuda" else "peak RSS (VmHWM)",
        "page_faults_per_step": round(faults / job["steps"], 1),  # minor faults: fresh pages from the kernel
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["mnist"])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=["library"], help="library: the package's own choices"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--repeats", type=int, default=1, help="rounds over all rows (compare medians on a noisy machine)"
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.repeats < 1 or args.steps < 1:
        parser.error("--repeats and --steps must be 1 or more")

    if args.threads:
        torch.set_num_threads(args.threads)
    peaks = {"fp32": matmul_peak(args.device), "bf16": matmul_peak(args.device, dtype=torch.bfloat16)}
    print(f"matmul peak: fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")
    jobs = [
        {"preset": p, "batch_size": b, "overrides": args.overrides, "device": args.device, "threads": args.threads,
         "steps": args.steps, "warmup": args.warmup, "data_dir": args.data_dir, "variant": v}
        for p in args.presets for b in args.batch_sizes for v in args.variants
    ]  # fmt: skip
    rows = []
    context = multiprocessing.get_context("spawn")
    flops: dict[tuple, int] = {}
    for round_index in range(args.repeats):  # rounds interleave the rows, so drift hits all alike
        for job in jobs:  # one fresh process each, so max RSS belongs to that configuration alone
            key = (job["preset"], job["batch_size"])
            flops.setdefault(key, _flops_per_step(job))
            with context.Pool(1) as pool:
                row = pool.apply(measure, ({**job, "flops_per_step": flops[key]},))
            rows.append(_with_peak_fractions(row, peaks, round_index))
            _print_row(rows[-1])
    report = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine_info(args.device, args.threads or torch.get_num_threads()),
        "matmul_peak_gflops": round(peaks["fp32"] / 1e9, 2),
        "bf16_matmul_peak_gflops": round(peaks["bf16"] / 1e9, 2),
        "results": rows,
        "medians": _medians(rows),
    }
    if args.repeats > 1:
        for row in report["medians"]:
            print(f"median of {args.repeats}: ", end="")
            _print_row(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _with_peak_fractions(row: dict, peaks: dict, round_index: int) -> dict:
    """Achieved FLOP/s against the fp32 peak (the issue's yardstick) and against the row's own dtype."""
    kind = "bf16" if row["variant"].startswith("bf16") else "fp32"
    achieved = row["achieved_gflops"] * 1e9
    return {
        **row,
        "round": round_index,
        "fraction_of_fp32_peak": round(achieved / peaks["fp32"], 3),
        "fraction_of_peak": round(achieved / peaks[kind], 3),
        "peak_kind": kind,
    }


def _medians(rows: list[dict]) -> list[dict]:
    """Per (preset, batch, variant): the row of median images/s (middle round; upper middle if even)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["preset"], row["batch_size"], row["variant"]), []).append(row)
    return [sorted(g, key=lambda r: r["images_per_s"])[len(g) // 2] for g in groups.values()]


def _print_row(row: dict) -> None:
    print(
        f"{row['preset']} {row['variant']} batch {row['batch_size']}: {row['images_per_s']} img/s, "
        f"{row['flops_per_image'] / 1e6:.1f} MFLOP/img, {row['achieved_gflops']} GFLOP/s "
        f"({100 * row['fraction_of_fp32_peak']:.0f}% of the fp32 peak, {100 * row['fraction_of_peak']:.0f}% of "
        f"{row['peak_kind']}), {row['peak_memory_mb']} MB, {row['page_faults_per_step']} page faults/step",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
