"""Round-3 pilot: benchmarks/mnist.py with a piecewise-linear learning-rate multiplier.

SCHED="STEP:FACTOR,..." (e.g. "0:1,2500:1,5000:0.1"): every optimiser's learning rate is its
config value times the factor interpolated at the step (set after each step, through the
progress callback). The library has no schedule; this patch is only for the pilots.

    SCHED="0:1,800:1,1600:0.25" python sched.py --preset mnist-laptop --steps 2000 ...
"""

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/, for mnist.py
import mnist  # noqa: E402

import infogan  # noqa: E402

KNOTS = [tuple(map(float, knot.split(":"))) for knot in os.environ["SCHED"].split(",")]
STEPS, FACTORS = [k[0] for k in KNOTS], [k[1] for k in KNOTS]
_train = infogan.train


def train(*args, progress=None, **kwargs):
    base = {}

    def scheduled(trainer):
        if not base:
            base.update({n: [g["lr"] for g in o.param_groups] for n, o in trainer.optimizers.named().items()})
        factor = float(np.interp(trainer.step, STEPS, FACTORS))
        for name, optimizer in trainer.optimizers.named().items():
            for group, lr in zip(optimizer.param_groups, base[name]):
                group["lr"] = lr * factor
        return progress(trainer)

    return _train(*args, progress=scheduled, **kwargs)


mnist.infogan.train = train
sys.exit(mnist.main())
