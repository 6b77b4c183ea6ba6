"""The `infogan` command line: argument parsing and printing over the library, one module per
command group (train, evaluate, select, images, files, tools)."""

from __future__ import annotations

import argparse
import os
import sys

import torch

from infogan.cli import evaluate, files, images, select, tools, train
from infogan.errors import InfoGANError
from infogan.training.ranks import World, reports_error

GROUPS = (train, evaluate, select, images, files, tools)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "threads", None) and args.command != "train":  # train takes them from the run
            torch.set_num_threads(args.threads)
        status = args.handler(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below rather than at exit
        return status
    except InfoGANError as exc:
        if _reports(exc):
            print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `infogan evaluate RUN | head -3`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 141


def _reports(exc: InfoGANError) -> bool:
    """Whether this process prints `exc`: under torchrun, an error every rank raised together
    is printed by rank 0 alone."""
    try:
        return reports_error(exc, World.from_environment())
    except InfoGANError:
        return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="infogan", description="Train, evaluate and use InfoGAN models.")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(commands)
    return parser
