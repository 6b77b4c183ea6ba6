"""Round-3 pilot (the first of them; sched.py does the same and more): benchmarks/mnist.py with
every learning rate decayed linearly from step DECAY_START to DECAY_FINAL (default 0) times its
config value at the last step, set after each step through the progress callback."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/, for mnist.py
import mnist  # noqa: E402

import infogan  # noqa: E402

START = int(os.environ["DECAY_START"])
FINAL = float(os.environ.get("DECAY_FINAL", "0"))
_train = infogan.train


def train(*args, progress=None, **kwargs):
    base = {}

    def decayed(trainer):
        if not base:
            base.update({n: [g["lr"] for g in o.param_groups] for n, o in trainer.optimizers.named().items()})
        total = trainer.config.optim.steps
        factor = 1.0 if trainer.step < START else 1 - (1 - FINAL) * (trainer.step - START) / max(1, total - START)
        for name, optimizer in trainer.optimizers.named().items():
            for group, lr in zip(optimizer.param_groups, base[name]):
                group["lr"] = lr * factor
        return progress(trainer)

    return _train(*args, progress=decayed, **kwargs)


mnist.infogan.train = train
sys.exit(mnist.main())
