"""MNIST benchmark: train a preset for several seeds, track the categorical code's test accuracy.

For each seed it trains the preset (default: the paper's `mnist`), evaluates accuracy / NMI / ARI
of every categorical code on the 10,000 test images (Hungarian matching) every --eval-every
steps (and, at the last step, its confusion matrix: rows are the code's values, columns the
digits), and records training wall time (evaluation excluded), images/s, time and images seen
until 90% and 95% accuracy, and the machine. Results go to a JSON file and a table on stdout.

    python benchmarks/mnist.py --seeds 0 1 2 --out benchmarks/results/mnist-paper/mnist-cpu.json
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import infogan
from infogan.config import resolve_config
from infogan.data import load_split
from infogan.provenance import processor_name
from infogan.runtime import cpu_has_fast_bf16

THRESHOLDS = (0.90, 0.95)
BUDGET_SECONDS = 60  # the accuracy each seed has after this much training (the last evaluation within it)


def machine_info(device: str, threads: int) -> dict:
    info = {
        "platform": platform.platform(),
        "processor": processor_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_bf16": cpu_has_fast_bf16(),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def run_seed(job: dict) -> dict:
    """Train one seed and return its accuracy curve and timings."""
    dataset = resolve_config(job["preset"], None, job["overrides"]).data.dataset
    train_images, _ = load_split(dataset, "train", job["data_dir"])
    test_images, test_labels = load_split(dataset, "test", job["data_dir"])
    graphs = job.get("cuda_graphs")
    runtime = {
        "device": job["device"],
        "precision": job.get("precision", "fp32"),
        "compile": job.get("compile", False),
        "cuda_graphs": "auto" if graphs is None else ("on" if graphs else "off"),
    }
    if job["threads"]:
        runtime["threads"] = job["threads"]
    overrides = [*job["overrides"], f"seed={job['seed']}", f"optim.steps={job['steps']}"]
    curve: list[dict] = []
    clock = {"train": 0.0, "last": time.perf_counter()}

    def evaluate_now(t: infogan.Trainer) -> None:
        config = t.config
        if t.step % job["eval_every"] and t.step != config.optim.steps:
            return
        _sync(job["device"])
        clock["train"] += time.perf_counter() - clock["last"]
        model = infogan.InfoGAN(config, copy.deepcopy(t.generator), copy.deepcopy(t.discriminator), t.step)
        result = infogan.evaluate(model, test_images, test_labels, samples=2000, seed=0)
        entry = {
            "step": t.step,
            "train_seconds": round(clock["train"], 2),
            "images_seen": t.step * config.optim.batch_size,
        }
        for name, metrics in result["clustering"].items():
            entry[name] = {k: round(metrics[k], 4) for k in ("accuracy", "nmi", "ari")}
            if t.step == config.optim.steps:  # rows: values of the code, columns: digits
                entry[name]["confusion"] = metrics["confusion"]
        if job.get("recalibrate"):
            recalibrate_batchnorm(model, train_images[:10000])
            codes = model.encode(test_images)
            for name in model.spec.categorical_names:
                m = infogan.cluster_metrics(codes[name].numpy(), test_labels.numpy())
                entry[name]["accuracy_recalibrated"] = round(m["accuracy"], 4)
        entry["information"] = {
            k: round(v.get("mi_lower_bound", v.get("loss", 0.0)), 4) for k, v in result["information"].items()
        }
        curve.append(entry)
        print(
            f"seed {job['seed']} step {t.step}: {_first_code_metrics(entry)} ({entry['train_seconds']:.0f}s)",
            flush=True,
        )
        clock["last"] = time.perf_counter()

    out = Path(job["run_dir"]) / f"seed{job['seed']}" if job.get("run_dir") else None
    result = infogan.train(job["preset"], out=out, overrides=overrides, images=train_images, runtime=runtime,
                           progress=evaluate_now)  # fmt: skip
    final = curve[-1]
    code = result.config.latent.categorical_names[0]
    return {
        "seed": job["seed"],
        "final": final,
        "train_seconds": final["train_seconds"],
        "images_per_s": round(final["images_seen"] / final["train_seconds"], 1),
        "time_to": {f"{th:.2f}": _first_reaching(curve, code, th) for th in THRESHOLDS},
        f"within_{BUDGET_SECONDS}s": _last_within(curve, code, BUDGET_SECONDS),
        "curve": curve,
    }


@torch.no_grad()
def recalibrate_batchnorm(model: infogan.InfoGAN, images: torch.Tensor) -> None:
    """Diagnostic: recompute D's batch-norm running stats on real images only (cumulative
    average), to see whether eval-mode statistics mixed from real and fake batches hurt Q."""
    module = model.discriminator
    for norm in module.modules():
        if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
            norm.reset_running_stats()
            norm.momentum = None
    low, high = model.config.model.image_range
    module.train()
    for chunk in images.split(500):
        module((chunk.float() / 255.0 * (high - low) + low).to(model.device), with_q=True)
    module.eval()


def _first_code_metrics(entry: dict) -> str:
    for key, value in entry.items():
        if isinstance(value, dict) and "accuracy" in value:
            recalibrated = value.get("accuracy_recalibrated")
            extra = f" (recalibrated {recalibrated})" if recalibrated is not None else ""
            return f"{key} acc {value['accuracy']:.4f}{extra} nmi {value['nmi']:.4f} ari {value['ari']:.4f}"
    return ""


def _first_reaching(curve: list[dict], code: str, threshold: float) -> dict | None:
    for entry in curve:
        if entry[code]["accuracy"] >= threshold:
            return {"step": entry["step"], "train_seconds": entry["train_seconds"], "images_seen": entry["images_seen"]}
    return None


def _last_within(curve: list[dict], code: str, seconds: float) -> dict | None:
    """The last evaluation at or before `seconds` of training: its step, seconds and accuracy."""
    within = [entry for entry in curve if entry["train_seconds"] <= seconds]
    if not within:
        return None
    last = within[-1]
    return {"step": last["step"], "train_seconds": last["train_seconds"], "accuracy": last[code]["accuracy"]}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def summarise(results: list[dict], code: str) -> dict:
    accuracies = [r["final"][code]["accuracy"] for r in results]
    summary = {
        "code": code,
        "final_accuracy": accuracies,
        "min_accuracy": min(accuracies),
        "median_accuracy": statistics.median(accuracies),
        "median_nmi": statistics.median(r["final"][code]["nmi"] for r in results),
        "median_ari": statistics.median(r["final"][code]["ari"] for r in results),
        "median_train_seconds": statistics.median(r["train_seconds"] for r in results),
        "median_images_per_s": statistics.median(r["images_per_s"] for r in results),
    }
    budget = [r.get(f"within_{BUDGET_SECONDS}s") for r in results]
    if all(budget):
        summary[f"median_accuracy_within_{BUDGET_SECONDS}s"] = statistics.median(b["accuracy"] for b in budget)
    for th in THRESHOLDS:
        times = [r["time_to"][f"{th:.2f}"] for r in results]
        reached = [t["train_seconds"] for t in times if t is not None]
        summary[f"seeds_reaching_{th:.2f}"] = len(reached)
        summary[f"median_seconds_to_{th:.2f}"] = statistics.median(reached) if len(reached) == len(times) else None
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mnist")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per seed (0: PyTorch's default)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once, in separate processes")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path, help="also write each seed's run directory, RUN_DIR/seedN")
    parser.add_argument("--recalibrate", action="store_true", help="also report accuracy after BN recalibration")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="as infogan train --precision")
    parser.add_argument("--compile", action="store_true", help="as infogan train --compile")
    parser.add_argument(
        "--cuda-graphs", action=argparse.BooleanOptionalAction, default=None, help="as infogan train --cuda-graphs"
    )
    args = parser.parse_args()
    config = resolve_config(args.preset, None, args.overrides)
    if args.steps is None:
        args.steps = config.optim.steps

    jobs = [
        {
            "seed": s,
            "preset": args.preset,
            "overrides": args.overrides,
            "steps": args.steps,
            "eval_every": args.eval_every,
            "device": args.device,
            "threads": args.threads,
            "data_dir": args.data_dir,
            "run_dir": args.run_dir,
            "recalibrate": args.recalibrate,
            "precision": args.precision,
            "compile": args.compile,
            "cuda_graphs": args.cuda_graphs,
        }
        for s in args.seeds
    ]
    start = time.perf_counter()
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(run_seed, jobs)
    else:
        results = [run_seed(job) for job in jobs]
    code = config.latent.categorical_names[0]
    report = {
        "command": "python " + " ".join(sys.argv),
        "preset": args.preset,
        "overrides": args.overrides,
        "steps": args.steps,
        "batch_size": config.optim.batch_size,
        "jobs": args.jobs,
        "precision": args.precision,
        "compile": args.compile,
        "cuda_graphs": args.cuda_graphs,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "machine": machine_info(args.device, args.threads or torch.get_num_threads()),
        "summary": summarise(results, code),
        "seeds": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
