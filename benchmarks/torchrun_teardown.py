"""How often a 2-rank gloo run aborts at exit, with and without collecting garbage before the
process group ends (`infogan.training.ranks.process_group` collects).

Each trial launches torchrun on a small worker: a few Adam steps with gradients all-reduced,
one `all_gather_object` and one `broadcast_object_list` (the collectives infogan's ranks use),
then `destroy_process_group()`. A trial fails when torchrun exits non-zero (a rank's SIGABRT,
"terminate called without an active exception").

    python benchmarks/torchrun_teardown.py --trials 40 --out benchmarks/results/distributed-mnist/teardown.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

WORKER = """
import gc, sys, torch, torch.distributed as dist
torch.set_num_threads(1)
dist.init_process_group("gloo")
model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten(),
                            torch.nn.Linear(8 * 14 * 14, 1))
optimizer = torch.optim.Adam(model.parameters())
for _ in range(5):
    model.zero_grad()
    model(torch.randn(8, 1, 16, 16)).sum().backward()
    flat = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    dist.all_reduce(flat)
    optimizer.step()
gathered = [None, None]
dist.all_gather_object(gathered, "x")
dist.broadcast_object_list([1], src=0, device=torch.device("cpu"))
if sys.argv[1] == "collect":
    gc.collect()
dist.destroy_process_group()
"""


def aborts(worker: Path, mode: str, trials: int) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone"]
    command = [*launcher, str(worker), mode]
    return sum(subprocess.run(command, capture_output=True, env=env).returncode != 0 for _ in range(trials))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        worker = Path(folder) / "worker.py"
        worker.write_text(WORKER)
        result = {mode: aborts(worker, mode, args.trials) for mode in ("plain", "collect")}
    report = {
        "trials": args.trials,
        "aborted": result,
        "torch": torch.__version__,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "command": " ".join(["python", "benchmarks/torchrun_teardown.py", *sys.argv[1:]]),
    }
    for mode, count in result.items():
        print(f"{mode}: {count} of {args.trials} two-rank runs aborted at exit")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
