"""Round-3 pilot: benchmarks/mnist.py with G's hidden layer GH wide while D keeps `model.hidden`
(the library has one size for both; this patch is only for the pilots)."""

import dataclasses
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/, for mnist.py
import mnist  # noqa: E402

import infogan.core.networks.mnist as networks  # noqa: E402

WIDTH = int(os.environ["GH"])
_init = networks.SmallMnistGenerator.__init__


def init(self, config, spec):
    _init(self, dataclasses.replace(config, hidden=WIDTH), spec)


networks.SmallMnistGenerator.__init__ = init
sys.exit(mnist.main())
