"""`infogan train` and `infogan presets`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import yaml

from infogan.cli.common import add_device_options, positive_int
from infogan.config import preset_names
from infogan.errors import InfoGANError
from infogan.runtime import NONFINITE_POLICIES, PRECISIONS
from infogan.training.ranks import World
from infogan.training.run import train


def add_commands(commands) -> None:
    _add_train(commands)
    presets = commands.add_parser("presets", help="list the shipped presets")
    presets.set_defaults(handler=cmd_presets)


def cmd_presets(args) -> int:
    print("\n".join(preset_names()))
    return 0


def _add_train(commands) -> None:
    p = commands.add_parser("train", help="train a model into a run directory")
    p.add_argument("--out", type=Path, help="run directory (created; new unless --resume; not needed with --dry-run)")
    p.add_argument("--preset", choices=preset_names(), help="start from a shipped preset (default: mnist)")
    p.add_argument("--config", type=Path, help="YAML, TOML or JSON file applied on top of the preset")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key, e.g. --set loss.lambda_continuous=0.5 (repeatable)",
    )
    p.add_argument("--seed", type=int, help="random seed (same as --set seed=S)")
    p.add_argument("--max-steps", type=positive_int, help="training steps (same as --set optim.steps=N)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--data-dir", type=Path, help="folder holding the data set files (else INFOGAN_DATA_DIR, ...)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument(
        "--progress",
        choices=("auto", "bar", "lines"),
        default="auto",
        help="progress display: a bar on a terminal, plain log lines otherwise",
    )
    p.add_argument(
        "--on-nonfinite",
        choices=NONFINITE_POLICIES,
        help="on NaN or infinity: stop (the last good checkpoint stays; the default), or roll back to it with "
        "halved learning rates and carry on",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="fp32 (the default) or bf16: forward passes under bfloat16 autocast (faster where the hardware has "
        "bfloat16 units, much slower on a CPU without AVX-512 or AMX; weights, optimiser and losses stay float32)",
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile the networks with torch.compile (first steps slow)",
    )
    p.add_argument(
        "--cuda-graphs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record one training step as a CUDA graph and replay it every step (no kernel-launch "
        "overhead). Default: on with a CUDA GPU, unless --compile",
    )
    add_device_options(p, device_default=None)
    p.set_defaults(handler=cmd_train)


def cmd_train(args) -> int:
    """`infogan.train` with the flags translated; under torchrun every rank runs this."""
    if args.out is None and not (args.dry_run and not args.resume):
        raise InfoGANError("infogan train needs --out RUN_DIR, the run directory to write (or to --resume)")
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.max_steps is not None:
        overrides.append(f"optim.steps={args.max_steps}")
    world = World.from_environment()
    result = train(
        args.config,
        preset=args.preset,
        out=args.out,
        overrides=overrides,
        resume=args.resume,
        data_dir=args.data_dir,
        runtime=_runtime_flags(args),
        progress=args.progress,
        handle_signals=True,
        dry_run=args.dry_run,
        world=world,
    )
    if args.dry_run:
        if world.is_main:
            print(yaml.safe_dump(result.config.to_dict(), sort_keys=False), end="")
        return 0
    if not result.completed:
        if world.is_main:
            print(
                f"\nstopped at step {result.step}; a checkpoint was saved. Continue with:\n"
                f"  infogan train --resume --out {shlex.quote(str(args.out))}",
                file=sys.stderr,
                flush=True,
            )
        return 130
    if world.is_main:
        print(f"trained {result.step} steps; run directory: {args.out}")
    return 0


def _runtime_flags(args) -> dict:
    """The runtime settings given on the command line (the rest come from the run or the defaults)."""
    flags = {
        "device": args.device,
        "precision": args.precision,
        "compile": args.compile,
        "cuda_graphs": None if args.cuda_graphs is None else ("on" if args.cuda_graphs else "off"),
        "threads": args.threads,
        "on_nonfinite": args.on_nonfinite,
    }
    return {key: value for key, value in flags.items() if value is not None}
