"""What every command shares: argument types, the device and thread options, and printing
notes."""

from __future__ import annotations

import argparse
import sys

MODEL_HELP = "run directory, export folder, .safetensors file or a shipped model's name (see infogan models)"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def at_least_two(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be 2 or more, got {value}")
    return value


def add_device_options(parser: argparse.ArgumentParser, device_default: str | None = "auto") -> None:
    parser.add_argument("--device", default=device_default, help="auto (GPU when present), cpu or cuda[:N]")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for PyTorch (default: its own)")


def note(line: str) -> None:
    """A progress line, on standard error."""
    print(line, file=sys.stderr, flush=True)
