"""The `infogan` command line: a thin layer over the library, one subcommand per job."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import shlex
import signal
import sys
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as ckpt
from .api import InfoGAN, load
from .config import parse_override, preset_names
from .data import has_labels, load_evaluation_set, load_training_images
from .distributed import World, announce, process_group, reports_error
from .errors import InfoGANError
from .evaluation import evaluate, factor_gaps, factors_file
from .explore.labels import CodeLabel, read_labels
from .fileio import write_bytes_atomically
from .images import read_inputs
from .latent import traversal_latents
from .memory import reuse_freed_memory
from .rundir import RunDirectory, breaks_bit_identity, training_config
from .runtime import NONFINITE_POLICIES, PRECISIONS
from .trainer import Trainer
from .visualize import Sweep, grid, save_animation, save_image_atomically, stack_panels, traversal_frames


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    _add_train(commands)
    _add_evaluate(commands)
    _add_sample(commands)
    _add_traverse(commands)
    _add_encode(commands)
    _add_export(commands)
    _add_curves(commands)
    _add_explore(commands)
    presets = commands.add_parser("presets", help="list the shipped presets")
    presets.set_defaults(handler=cmd_presets)
    return parser


def cmd_presets(args) -> int:
    print("\n".join(preset_names()))
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _common(parser: argparse.ArgumentParser, device_default: str | None = "auto") -> None:
    parser.add_argument("--device", default=device_default, help="auto (GPU when present), cpu or cuda[:N]")
    parser.add_argument("--threads", type=_positive_int, help="CPU threads for PyTorch (default: its own)")


# -- train -----------------------------------------------------------------------------------


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
    p.add_argument("--max-steps", type=_positive_int, help="training steps (same as --set optim.steps=N)")
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
        "bfloat16 units; weights, optimiser and losses stay float32)",
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
    _common(p, device_default=None)
    p.set_defaults(handler=cmd_train)


def _runtime_flags(args) -> dict:
    """The runtime settings given on the command line (the rest come from the run or the defaults)."""
    flags = {
        "device": args.device,
        "precision": args.precision,
        "compile": args.compile,
        "cuda_graphs": None if args.cuda_graphs is None else ("on" if args.cuda_graphs else "off"),
        "threads": args.threads,
        "data_dir": None if args.data_dir is None else str(args.data_dir.resolve()),
        "on_nonfinite": args.on_nonfinite,
    }
    if not args.resume and args.threads is None:
        flags["threads"] = torch.get_num_threads()  # recorded, so a resume uses the same count
    return {key: value for key, value in flags.items() if value is not None}


def cmd_train(args) -> int:
    """Train in this process, or as one rank of several when torchrun launched it (RANK,
    WORLD_SIZE, LOCAL_RANK in the environment): see `infogan.distributed`."""
    world = World.from_environment()
    with process_group(world):
        return _train(args, world)


def _train(args, world: World) -> int:
    if args.out is None and not (args.dry_run and not args.resume):
        raise InfoGANError("infogan train needs --out RUN_DIR, the run directory to write (or to --resume)")
    run = None if args.out is None else RunDirectory(args.out)
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.max_steps is not None:
        overrides.append(f"optim.steps={args.max_steps}")
    kept: dict = {}  # rank 0's checkpoint, read once
    config, snapshot_path = world.from_main(lambda: _decide_config(args, run, overrides, world, kept))
    if args.dry_run:
        import yaml

        if world.is_main:
            print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    snapshot = kept.get("snapshot") if world.is_main else None
    if snapshot is None and snapshot_path is not None:
        snapshot = ckpt.load_snapshot(snapshot_path)
    if snapshot is not None:
        for change in breaks_bit_identity(snapshot.config, config):
            announce(
                world,
                f"note: {change} differs from the run so far; it will not be bit-identical to an uninterrupted run",
            )
    if config.runtime.threads:
        torch.set_num_threads(config.runtime.threads)
    images = world.on_every_rank(lambda: _training_images(config, run, world))
    progress = None if args.progress == "auto" else args.progress == "bar"
    reuse_freed_memory()  # no fresh pages from the kernel every step (see infogan.memory)
    trainer = Trainer(config, images, run_dir=run, progress=progress, world=world)
    if snapshot is not None:
        trainer.restore(snapshot)
        announce(world, f"resuming {args.out} at step {trainer.step} on {world.describe()}")
    with _stop_on_signals(trainer, world):
        completed = trainer.fit()
    if not completed:
        announce(
            world,
            f"\nstopped at step {trainer.step}; a checkpoint was saved. Continue with:\n"
            f"  infogan train --resume --out {shlex.quote(str(args.out))}",
        )
        return 130
    if world.is_main:
        print(f"trained {trainer.step} steps; run directory: {args.out}")
    return 0


def _decide_config(args, run: RunDirectory | None, overrides: list[str], world: World, kept: dict):
    """Rank 0's part of starting `train`: the config and the checkpoint to resume from (its
    path, for the other ranks to read; the snapshot itself goes into `kept`). Under a torchrun
    restart (TORCHELASTIC_RESTART_COUNT above 0) a run that has checkpoints is resumed."""
    resume = args.resume
    if world.restart and not resume and run is not None and run.has_run():
        resume = True
        print(
            f"torchrun restart {world.restart}: resuming {args.out} from its newest checkpoint",
            file=sys.stderr,
            flush=True,
        )
    given = dict(parse_override(text) for text in overrides).get("distributed.world_size", world.size)
    if given != world.size:
        raise InfoGANError(
            f"distributed.world_size is {given!r}, but {world.describe()} train: the world size is recorded from "
            "the launcher (torchrun --nproc-per-node, --nnodes), not set; drop that override"
        )
    if run is not None and resume and not args.dry_run and args.out.is_dir():
        run.lock()  # before the checkpoint is read, so a run in use is refused at once
    config, snapshot = training_config(run, resume, args.preset, args.config, overrides, _runtime_flags(args))
    world.share(config.optim.batch_size)  # a global batch the ranks cannot split is refused before any work
    kept["snapshot"] = snapshot
    return config, None if snapshot is None else str(run.checkpoint_path(snapshot.step))


def _training_images(config, run: RunDirectory, world: World):
    """Every rank's copy of the training images; rank 0 also takes a new run's lock (once the
    config and the data are known to be good, so a mistake leaves no folder behind)."""
    images = load_training_images(config.data, config.model, config.runtime.data_dir or None)
    if world.is_main and not run.locked:
        run.lock()
        if run.has_run():
            raise InfoGANError(f"{run.path} already holds a run; pass --resume to continue it or choose another --out")
    return images


@contextlib.contextmanager
def _stop_on_signals(trainer: Trainer, world: World):
    """SIGINT/SIGTERM ask the trainer to stop after the current step (it then saves a
    checkpoint); a second signal stops at once. Under torchrun the launcher passes the signal
    on to every rank, and the ranks stop after the same step."""

    def handler(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        announce(
            world,
            f"\n{signal.Signals(signum).name}: finishing this step and saving a checkpoint "
            + ("(signal again to stop at once)" if world.size == 1 else f"(all {world.size} ranks stop together)"),
        )
        trainer.request_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- evaluate ----------------------------------------------------------------------------------


def _add_evaluate(commands) -> None:
    p = commands.add_parser("evaluate", help="clustering metrics on the test split and information bounds")
    p.add_argument("model", type=Path, help="run directory, export folder or .safetensors file")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--samples", type=_positive_int, default=10000, help="fresh samples for the information bounds")
    p.add_argument("--limit", type=_positive_int, help="evaluate on the first N labelled images only (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="JSON file to write (default: MODEL/evaluation.json for a run directory)")
    p.add_argument("--data-dir", type=Path)
    _common(p)
    p.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args) -> int:
    model = _load(args)
    images = labels = factors = codes = None
    if has_labels(model.config.data):
        size = args.limit or 10000
        images, labels, factors = load_evaluation_set(model.config.data, args.split, args.data_dir, size, args.seed)
        images, labels = images[: args.limit or None], labels[: args.limit or None]
        codes = model.encode(images)
    else:
        print(f"{model.config.data.dataset}: no labels, so only the information bounds are measured")
    result = {"split": args.split, **evaluate(model, images, labels, args.samples, args.seed, codes)}
    out = _evaluation_path(args)
    if factors is not None:
        from .data import dsprites

        _write_bytes(out.with_name("factors.npz"), factors_file(model, codes, factors))
        result["disentanglement"] = factor_gaps(model, codes, factors, dsprites.FACTOR_NAMES)
    _write_text(out, json.dumps(result, indent=2) + "\n")  # written first: printing may meet a closed pipe
    _print_evaluation(result, factors)
    print(f"wrote {out}" + (f" and {out.with_name('factors.npz')}" if factors is not None else ""))
    return 0


def _print_evaluation(result: dict, factors) -> None:
    for name, metrics in result["clustering"].items():
        print(f"{name}: accuracy {metrics['accuracy']:.4f}  NMI {metrics['nmi']:.4f}  ARI {metrics['ari']:.4f}")
    for name, info in result["information"].items():
        print(
            f"{name}: information bound {info['mi_lower_bound']:.4f} nats of H({name}) = {info['entropy']:.4f}"
            + ("" if "cross_entropy" in info else f"  (training loss {info['loss']:.4f}, {info['convention']})")
        )
    mig = result.get("disentanglement")
    if factors is not None and not mig:
        print("MIG needs two or more codes; skipped")
    elif mig:
        gaps = ", ".join(f"{n} {g:.3f}" for n, g in zip(mig["factor_names"], mig["per_factor"]) if g is not None)
        print(f"MIG {mig['mig']:.4f} (per factor: {gaps})")


def _evaluation_path(args) -> Path:
    if args.out:
        return args.out
    return args.model / "evaluation.json" if args.model.is_dir() else args.model.with_name("evaluation.json")


# -- sample and traverse -----------------------------------------------------------------------


def _add_sample(commands) -> None:
    p = commands.add_parser("sample", help="a grid of generated images, with chosen codes")
    p.add_argument("model", type=Path)
    p.add_argument("--out", required=True, type=Path, help="image file (.png or .jpg)")
    p.add_argument("-n", "--count", type=_positive_int, default=64)
    p.add_argument("--columns", type=_positive_int, default=8)
    p.add_argument(
        "--code",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="fix a code for every image, e.g. --code c1=7 --code c2=1.5",
    )
    p.add_argument("--seed", type=int, default=0)
    _common(p)
    p.set_defaults(handler=cmd_sample)


def cmd_sample(args) -> int:
    model = _load(args)
    codes = dict(_parse_code(text) for text in args.code)
    images = model.generate(args.count, codes, seed=args.seed)
    save_image_atomically(grid(images, args.columns), args.out)
    print(f"wrote {args.out}")
    return 0


def _parse_code(text: str) -> tuple[str, float]:
    name, value = parse_override(text)
    with contextlib.suppress(TypeError, ValueError):
        value = float(value) if isinstance(value, str) else value  # YAML reads nan, 1e-3 as text
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InfoGANError(f"--code {text!r} must look like NAME=NUMBER, e.g. c1=3 or c2=-1.5")
    return name, value


def _add_traverse(commands) -> None:
    p = commands.add_parser("traverse", help="vary one code along the columns, others fixed (paper Fig. 2)")
    p.add_argument("model", type=Path)
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="image file (.png or .jpg), or .gif for an animation: each code swept back and forth, one panel each",
    )
    p.add_argument("--code", help="code to vary, e.g. c2 (default: every code, one panel each)")
    p.add_argument(
        "--range",
        nargs=2,
        type=float,
        default=(-2.0, 2.0),
        metavar=("LOW", "HIGH"),
        help="sweep of a continuous code (default -2 2)",
    )
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=10,
        help="columns of a continuous sweep (a GIF goes through them and back)",
    )
    p.add_argument("--rows", type=_positive_int, default=10, help="rows when they are random draws")
    p.add_argument("--frame-ms", type=_positive_int, default=150, help="GIF only: how long each frame shows")
    p.add_argument("--seed", type=int, default=0)
    _common(p)
    p.set_defaults(handler=cmd_traverse)


def cmd_traverse(args) -> int:
    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg", ".gif"):
        raise InfoGANError(f"--out {args.out} must end in .png, .jpg, .jpeg or .gif")
    model = _load(args)
    names = [args.code] if args.code else model.spec.code_names
    if not names:
        raise InfoGANError("this model has no latent codes to traverse")
    sweeps = []
    for name in names:
        rng = torch.Generator().manual_seed(args.seed)
        latent, columns = traversal_latents(model.spec, name, args.steps, args.rows, tuple(args.range), rng)
        sweeps.append((name, model.generate_from(latent), columns))
    if suffix == ".gif":
        labels = read_labels(args.model, model.spec, model.config.data.dataset, model.step).codes
        frames = traversal_frames([_sweep(model, labels[n], images, c, args.range) for n, images, c in sweeps])
        save_animation(frames, args.out, args.frame_ms)
    else:
        save_image_atomically(stack_panels([grid(images, columns) for _, images, columns in sweeps]), args.out)
    print(f"wrote {args.out} ({', '.join(names)})")
    return 0


def _sweep(model: InfoGAN, label: CodeLabel, images: torch.Tensor, columns: int, value_range) -> Sweep:
    if model.spec.locate(label.name)[0] == "categorical":
        captions = tuple(label.value_title(j) for j in range(columns))
    else:
        captions = tuple(f"{v:.2f}" for v in np.linspace(value_range[0], value_range[1], columns))
    return Sweep(label.title, images, columns, captions)


# -- encode and export -------------------------------------------------------------------------


def _add_encode(commands) -> None:
    p = commands.add_parser("encode", help="predict the codes of real images (image files or an IDX file)")
    p.add_argument("model", type=Path)
    p.add_argument("inputs", nargs="+", type=Path, help="PNG/JPEG files or IDX image files (.gz or not)")
    p.add_argument("--out", required=True, type=Path, help=".csv (with a header) or .npy (N x codes)")
    _common(p)
    p.set_defaults(handler=cmd_encode)


def cmd_encode(args) -> int:
    if args.out.suffix not in (".csv", ".npy"):
        raise InfoGANError(f"--out {args.out} must end in .csv or .npy")
    model = _load(args)
    images, sources = read_inputs(args.inputs, model.config.model.image_channels, model.config.model.image_size)
    codes = model.encode(images)
    names = list(codes)
    table = np.stack([codes[n].float().numpy() for n in names], axis=1) if names else np.zeros((len(sources), 0))
    if args.out.suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, table.astype(np.float32))
        _write_bytes(args.out, buffer.getvalue())
    else:
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["source", *names])
        for source, row in zip(sources, table):
            writer.writerow([source, *(_format_code(model, n, v) for n, v in zip(names, row))])
        _write_text(args.out, text.getvalue())
    print(f"wrote {args.out}: {len(sources)} images, columns {', '.join(names)}")
    return 0


def _format_code(model: InfoGAN, name: str, value: float) -> str:
    kind, _ = model.spec.locate(name)
    return str(int(value)) if kind == "categorical" else f"{value:.6f}"


def _add_export(commands) -> None:
    p = commands.add_parser("export", help="write model.safetensors and config.json (no pickle)")
    p.add_argument("model", type=Path)
    p.add_argument("--out", required=True, type=Path, help="folder to write")
    p.add_argument("--force", action="store_true", help="overwrite an export already in the folder")
    _common(p)
    p.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    folder = _load(args).export(args.out, overwrite=args.force)
    print(f"wrote {folder}/model.safetensors and {folder}/config.json")
    return 0


def _add_curves(commands) -> None:
    p = commands.add_parser("curves", help="plot the information bounds and losses of a run (needs matplotlib)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", required=True, type=Path, help="PNG file to write")
    p.set_defaults(handler=cmd_curves)


def cmd_curves(args) -> int:
    from .config import resolve_config
    from .curves import code_titles, plot_curves, read_metrics

    records = read_metrics(args.run_dir / "metrics.jsonl")
    config = resolve_config(None, args.run_dir / "config.yaml")
    plot_curves(records, config, args.out, code_titles(args.run_dir, config))
    print(f"wrote {args.out} ({len(records)} log points up to step {records[-1]['step']})")
    return 0


# -- explore ---------------------------------------------------------------------------------


def _add_explore(commands) -> None:
    p = commands.add_parser("explore", help="a local web page: turn the codes, see the images, encode your own")
    p.add_argument("model", type=Path, help="run directory, export folder or .safetensors file")
    p.add_argument("model2", type=Path, nargs="?", help="a second model, shown beside the first with the same codes")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)")
    p.add_argument(
        "--range",
        nargs=2,
        type=float,
        default=(-2.0, 2.0),
        metavar=("LOW", "HIGH"),
        help="starting range of the continuous codes' sliders (default -2 2; the page can change it)",
    )
    p.add_argument("--device", default="cpu", help="cpu (the default), auto or cuda[:N]")
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="CPU threads for PyTorch (default 1: each request is small; requests from several tabs run side by side)",
    )
    p.set_defaults(handler=cmd_explore)


def cmd_explore(args) -> int:
    try:
        from .explore.server import explore
    except ImportError as exc:
        raise InfoGANError(f"infogan explore needs the explore extra ({exc}): pip install 'infogan[explore]'") from None
    explore([args.model] + ([args.model2] if args.model2 else []), args.host, args.port, tuple(args.range), args.device)
    return 0


# -- helpers -----------------------------------------------------------------------------------


def _load(args) -> InfoGAN:
    return load(args.model, args.device)


def _write_bytes(path: Path, payload: bytes) -> None:
    try:
        write_bytes_atomically(path, payload)
    except OSError as exc:
        raise InfoGANError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_text(path: Path, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))


if __name__ == "__main__":
    sys.exit(main())
