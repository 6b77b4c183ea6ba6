"""Round-3 pilot: benchmarks/mnist.py with the augmented term on the first K generated images of
each batch only, in D's and G's update (this patch is only for the pilots)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/, for mnist.py
import mnist  # noqa: E402

import infogan.training.step as step  # noqa: E402

K = int(os.environ["K"])
_transformed, _augmented_ce = step._transformed, step._augmented_ce


def transformed(ctx, fake, draws):
    return _transformed(ctx, fake[:K], None if draws is None else draws[:K])


def augmented_ce(ctx, images, latent, draws, transformed=None):
    draws = None if draws is None else draws[:K]
    return _augmented_ce(ctx, images[:K], latent.rows(slice(0, K)), draws, transformed)


step._transformed, step._augmented_ce = transformed, augmented_ce
sys.exit(mnist.main())
