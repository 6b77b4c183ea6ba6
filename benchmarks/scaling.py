"""Data-parallel scaling on this machine: images/s and time per step for 1..N ranks, the time the
gradient all-reduce (and the per-step stop agreement) takes, the efficiency per rank, and the
cost of reducing gradients by hand (the library) against DistributedDataParallel.

Ranks are forked processes in one gloo (CPU) or NCCL (CUDA) group on a FileStore, each training
the paper's MNIST networks (the `mnist` preset) on its share of the global batch, one thread
each on the CPU. `--batch` is the global batch (strong scaling, the library's meaning of
optim.batch_size); `--per-rank` makes it the batch of each rank instead (weak scaling).

Reductions (--reductions):
  manual        the library: one flattened all-reduce per optimiser step, before optimizer.step()
  ddp           both networks wrapped in DistributedDataParallel (buckets overlap the all-reduce
                with the backward pass); G's update calls D's module past its wrapper, since D is
                frozen there (the "both" convention only, no augmented term)
  ddp-unused    as ddp, but G's update goes through D's wrapper with find_unused_parameters=True
  none          no reduction at all: the compute alone (ranks drift apart; for timing only)

    python benchmarks/scaling.py --ranks 1 2 --batch 64 --steps 30 --out benchmarks/results/scaling-cpu/scaling-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from infogan.config import resolve_config
from infogan.core.losses import discriminator_loss, generator_loss
from infogan.data import load_split
from infogan.training.loop import Trainer
from infogan.training.memory import reuse_freed_memory
from infogan.training.ranks import World
from infogan.training.step import _info, set_trainable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist import machine_info  # noqa: E402

REDUCTIONS = ("manual", "ddp", "ddp-unused", "none")


class TimedWorld(World):
    """The library's World, timing each gradient all-reduce (into TIMINGS, per process)."""

    def average_gradients(self, params) -> None:
        start = time.perf_counter()
        super().average_gradients(params)
        TIMINGS["all_reduce"].append(time.perf_counter() - start)


TIMINGS: dict[str, list[float]] = {"all_reduce": [], "stop_check": []}


class LocalWorld(World):
    """A world whose gradients are not reduced (reduction `none`)."""

    def average_gradients(self, params) -> None:
        return


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ddp_step(trainer: Trainer, ddp_g, ddp_d, real: torch.Tensor, latent, through_wrapper: bool) -> None:
    """The "both" convention's D and G updates with DDP doing the averaging."""
    ctx, spec, loss_cfg = trainer._context, trainer.spec, trainer.config.loss
    d, d_opt, g_opt = trainer.discriminator, trainer.optimizers.d, trainer.optimizers.g
    fake = ddp_g(spec.to_input(latent))
    set_trainable(d, d.parameters())
    d_opt.zero_grad(set_to_none=True)
    logits, q = ddp_d(torch.cat([real, fake.detach()]), parts=(len(real), len(fake)))
    real_logits, fake_logits = logits.split([len(real), len(fake)])
    (discriminator_loss(real_logits, fake_logits, loss_cfg.adversarial) + _info(ctx, q, latent).total).backward()
    d_opt.step()
    set_trainable(d, ())
    g_opt.zero_grad(set_to_none=True)
    fake_logits, q = (ddp_d if through_wrapper else d)(fake, with_q=True)
    (generator_loss(fake_logits, loss_cfg.adversarial) + _info(ctx, q, latent).total).backward()
    g_opt.step()


def run_rank(world: World, args, images: torch.Tensor, reduction: str) -> dict:
    torch.set_num_threads(args.threads)
    batch = args.batch * world.size if args.per_rank else args.batch
    config = resolve_config("mnist", overrides=[f"optim.batch_size={batch}", f"runtime.device={args.device}"])
    config = config.replace(**{"runtime.cuda_graphs": "off", "runtime.precision": args.precision})
    kind = LocalWorld if reduction == "none" else TimedWorld
    world = kind(rank=world.rank, size=world.size, local_rank=world.rank, local_size=world.size)
    trainer = Trainer(config, images, progress=False, world=world)
    ddp_g = ddp_d = None
    if reduction.startswith("ddp") and world.size > 1:
        unused = reduction == "ddp-unused"
        ddp_g = DistributedDataParallel(trainer.generator, find_unused_parameters=unused)
        ddp_d = DistributedDataParallel(trainer.discriminator, find_unused_parameters=unused)
    rows = world.rows(batch)
    times = []
    world.barrier()
    for step in range(args.warmup + args.steps):
        _sync(trainer.device)
        start = time.perf_counter()
        latent = trainer.spec.sample(batch, trainer.latent_rng, trainer.device).rows(rows)
        real = trainer.batches.batch(step)
        if ddp_d is None:
            trainer.train_on(real, latent)
        else:
            _ddp_step(trainer, ddp_g, ddp_d, real, latent, through_wrapper=reduction == "ddp-unused")
        check = time.perf_counter()
        world.any(False)  # the loop's per-step stop agreement
        TIMINGS["stop_check"].append(time.perf_counter() - check)
        _sync(trainer.device)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    reduce_times = TIMINGS["all_reduce"][-2 * args.steps :]  # two optimiser steps per training step
    return {
        "seconds_per_step": statistics.median(times),
        "all_reduce_ms_per_step": 2e3 * statistics.median(reduce_times) if reduce_times else 0.0,
        "stop_check_ms_per_step": 1e3 * statistics.median(TIMINGS["stop_check"][-args.steps :]),
    }


def _rank_main(rank: int, size: int, init: str, folder: Path, args, images, reduction: str) -> None:
    status = 0
    try:
        backend = "nccl" if args.device == "cuda" else "gloo"
        if args.device == "cuda":
            torch.cuda.set_device(0)  # one GPU: every rank shares it
        dist.init_process_group(backend, init_method=init, rank=rank, world_size=size)
        result = run_rank(World(rank=rank, size=size), args, images, reduction)
        (folder / f"rank-{rank}.pickle").write_bytes(pickle.dumps(result))
    except BaseException:
        traceback.print_exc()
        status = 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        os._exit(status)


def measure(size: int, args, images: torch.Tensor, reduction: str) -> dict:
    context = torch.multiprocessing.get_context("fork" if args.device == "cpu" else "spawn")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        init = f"file://{folder / 'store'}"
        processes = [
            context.Process(target=_rank_main, args=(r, size, init, folder, args, images, reduction))
            for r in range(size)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        if any(p.exitcode != 0 for p in processes):
            return {"ranks": size, "reduction": reduction, "error": "a rank failed (traceback above)"}
        ranks = [pickle.loads((folder / f"rank-{r}.pickle").read_bytes()) for r in range(size)]
    step = max(r["seconds_per_step"] for r in ranks)
    batch = args.batch * size if args.per_rank else args.batch
    return {
        "ranks": size,
        "reduction": reduction,
        "global_batch": batch,
        "seconds_per_step": round(step, 4),
        "images_per_s": round(batch / step, 1),
        "all_reduce_ms_per_step": round(max(r["all_reduce_ms_per_step"] for r in ranks), 2),
        "stop_check_ms_per_step": round(max(r["stop_check_ms_per_step"] for r in ranks), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reductions", nargs="+", choices=REDUCTIONS, default=["manual"])
    parser.add_argument("--batch", type=int, default=64, help="global batch (per rank with --per-rank)")
    parser.add_argument("--per-rank", action="store_true", help="--batch is each rank's batch (weak scaling)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="threads per rank on the CPU")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--images", type=int, default=4096, help="MNIST training images to draw batches from")
    parser.add_argument("--data-dir", default=os.environ.get("INFOGAN_DATA_DIR"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    reuse_freed_memory()
    images = load_split("mnist", "train", args.data_dir, download=False)[0][: args.images]
    rows = []
    for reduction in args.reductions:
        for size in args.ranks:
            if size == 1 and reduction != args.reductions[0]:
                continue  # one rank reduces nothing: measured once
            row = measure(size, args, images, reduction)
            rows.append(row)
            print(json.dumps(row), flush=True)
    single = next((r for r in rows if r["ranks"] == 1 and "error" not in r), None)
    for row in rows:
        if single and "error" not in row:
            row["efficiency_per_rank"] = round(row["images_per_s"] / (row["ranks"] * single["images_per_s"]), 3)
    result = {"command": " ".join(sys.argv), "machine": machine_info(args.device, args.threads)}
    result["args"] = {**vars(args), "out": str(args.out)}
    result["load_average"] = os.getloadavg()
    result["rows"] = rows
    print(f"{'ranks':>5} {'reduction':>10} {'batch':>5} {'s/step':>8} {'img/s':>8} {'all-reduce ms':>13} {'eff.':>5}")
    for r in rows:
        if "error" in r:
            print(f"{r['ranks']:>5} {r['reduction']:>10} {r['error']}")
            continue
        print(
            f"{r['ranks']:>5} {r['reduction']:>10} {r['global_batch']:>5} {r['seconds_per_step']:>8.3f} "
            f"{r['images_per_s']:>8.1f} {r['all_reduce_ms_per_step']:>13.1f} {r.get('efficiency_per_rank', 0):>5.2f}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
