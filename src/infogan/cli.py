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

import infogan.checkpoint as ckpt
from infogan.checkpoint import load_model
from infogan.config import parse_override, preset_names
from infogan.core.latent import code_rows_latents, traversal_latents
from infogan.data import has_labels, load_evaluation_set, load_training_images
from infogan.data.inputs import read_inputs
from infogan.errors import InfoGANError
from infogan.evaluation.disentanglement import METRICS, PROTOCOLS
from infogan.evaluation.measures import (
    cached_representation,
    codes_from_matrix,
    evaluate,
    evaluate_disentanglement_of,
    factor_gaps,
    factors_file,
)
from infogan.evaluation.selection import (
    Candidate,
    SelectionSizes,
    check_candidates,
    sample_rows,
    select_by_agreement,
    select_models,
    selection_cost,
)
from infogan.explore.labels import CodeLabel, read_labels
from infogan.fileio import write_bytes_atomically
from infogan.model import InfoGAN, load
from infogan.runtime import NONFINITE_POLICIES, PRECISIONS
from infogan.training.loop import Trainer
from infogan.training.memory import reuse_freed_memory
from infogan.training.ranks import World, announce, process_group, reports_error
from infogan.training.run_directory import RunDirectory, breaks_bit_identity, training_config
from infogan.viz.figures import (
    Sweep,
    grid,
    labelled_rows,
    save_animation,
    save_image_atomically,
    save_pil_atomically,
    stack_panels,
    traversal_frames,
)


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
    _add_select(commands)
    _add_sample(commands)
    _add_traverse(commands)
    _add_encode(commands)
    _add_export(commands)
    _add_curves(commands)
    _add_explore(commands)
    _add_quality_net(commands)
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
    WORLD_SIZE, LOCAL_RANK in the environment): see `infogan.training.ranks`."""
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
    reuse_freed_memory()  # no fresh pages from the kernel every step (see infogan.training.memory)
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
    p = commands.add_parser(
        "evaluate",
        help="clustering metrics on the test split and information bounds; on dSprites the disentanglement metrics",
    )
    p.add_argument("model", type=Path, help="run directory, export folder or .safetensors file")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--samples", type=_positive_int, default=10000, help="fresh samples for the information bounds")
    p.add_argument("--limit", type=_positive_int, help="evaluate on the first N labelled images only (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="JSON file to write (default: MODEL/evaluation.json for a run directory)")
    p.add_argument(
        "--quality-samples",
        type=_non_negative_int,
        default=10000,
        help="generated images for the sample-quality score (needs `infogan quality-net train`; 0 skips it)",
    )
    p.add_argument("--data-dir", type=Path)
    p.add_argument(
        "--protocol",
        choices=("both", *PROTOCOLS, "none"),
        help="dSprites only: the disentanglement metrics under disentanglement_lib's protocol, InfoGAN-CR's, both "
        "(the default: one pass of Q over dSprites serves both) or none",
    )
    p.add_argument(
        "--metrics",
        type=_metric_names,
        help=f"dSprites only: a comma-separated subset of {','.join(METRICS)} (default: all)",
    )
    p.add_argument(
        "--protocol-set",
        dest="protocol_options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dSprites only: change one option of every protocol, e.g. --protocol-set factor_vae_train=500 for a "
        "quicker look (the figures are then marked as not at the protocol's sizes; repeatable)",
    )
    _common(p)
    p.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args) -> int:
    model = _load(args)
    protocols = _evaluation_protocols(args, model)
    images = labels = factors = codes = disentanglement = None
    if has_labels(model.config.data):
        size = args.limit or 10000
        images, labels, factors = load_evaluation_set(model.config.data, args.split, args.data_dir, size, args.seed)
        images, labels = images[: args.limit or None], labels[: args.limit or None]
        if protocols:  # dSprites: Q reads each image once, the clustering images' codes included
            cache = cached_representation(model)
            names = " and ".join(p.name for p in protocols)
            _note(f"dSprites: disentanglement metrics under {names}; Q reads each image at most once (minutes)")
            disentanglement = evaluate_disentanglement_of(
                model, protocols, args.metrics, args.seed, cache=cache, progress=_note
            )
            codes = codes_from_matrix(model, cache.codes_of(factors[: len(images)]))
        else:
            codes = model.encode(images)
    else:
        print(f"{model.config.data.dataset}: no labels, so only the information bounds are measured")
    result = {"split": args.split, **evaluate(model, images, labels, args.samples, args.seed, codes)}
    result["quality"] = _quality_for(model, args)  # sample-quality score (see "quality-net" below)
    out = _evaluation_path(args)
    if factors is not None:
        from infogan.data import dsprites

        _write_bytes(out.with_name("factors.npz"), factors_file(model, codes, factors))
        result["labels"] = "shape"  # the clustering's labels: dSprites' one categorical factor
        if disentanglement is None:  # --protocol none: MIG of the clustering images' codes only
            disentanglement = factor_gaps(model, codes, factors, dsprites.FACTOR_NAMES)
        result["disentanglement"] = disentanglement
    _write_text(out, json.dumps(result, indent=2) + "\n")  # written first: printing may meet a closed pipe
    _print_evaluation(result, factors)
    _print_quality(result["quality"])
    print(f"wrote {out}" + (f" and {out.with_name('factors.npz')}" if factors is not None else ""))
    return 0


def _note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _evaluation_protocols(args, model: InfoGAN) -> list:
    """The protocols `evaluate` scores the disentanglement metrics under: on dSprites those of
    --protocol (default both), with --protocol-set options applied; none elsewhere."""
    on_dsprites = model.config.data.dataset == "dsprites"
    if not on_dsprites:
        given = [flag for flag, value in (("--protocol", args.protocol), ("--metrics", args.metrics),
                                          ("--protocol-set", args.protocol_options)) if value]  # fmt: skip
        if given and args.protocol != "none":
            raise InfoGANError(
                f"{given[0]} needs ground-truth factors, which only dSprites has here; "
                f"this model was trained on {model.config.data.dataset}"
            )
        return []
    choice = args.protocol or "both"
    if choice == "none":
        return []
    changes = dict(parse_override(text) for text in args.protocol_options)
    unknown = sorted(set(changes) - (set(PROTOCOLS["infogan_cr"].to_dict()) - {"name"}))
    if unknown:
        raise InfoGANError(
            f"--protocol-set: {unknown[0]!r} is not an option of infogan.evaluation.disentanglement.Protocol"
        )
    chosen = []
    for name in PROTOCOLS if choice == "both" else [choice]:
        try:
            chosen.append(PROTOCOLS[name].replace(**changes))
        except ValueError as exc:
            raise InfoGANError(f"--protocol-set: {exc}") from None
    return chosen


def _metric_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{unknown[0] if unknown else text!r} is not one of {', '.join(METRICS)}")
    return names


def _print_evaluation(result: dict, factors) -> None:
    against = f"  (against shape, {result['images']} random dSprites images)" if factors is not None else ""
    for name, metrics in result["clustering"].items():
        print(
            f"{name}: accuracy {metrics['accuracy']:.4f}  NMI {metrics['nmi']:.4f}  ARI {metrics['ari']:.4f}{against}"
        )
    for name, info in result["information"].items():
        bound = f"{name}: information bound {info['mi_lower_bound']:.4f} nats"
        if "cross_entropy" in info:  # categorical: H(c) is the ceiling
            print(f"{bound} of H({name}) = {info['entropy']:.4f}")
        else:  # continuous: H(c) is a differential entropy, no ceiling on the information
            print(
                f"{bound} (differential entropy h({name}) = {info['entropy']:.4f}, not a ceiling;"
                f" training loss {info['loss']:.4f}, {info['convention']})"
            )
    mig = result.get("disentanglement")
    if factors is not None and not mig:
        print("MIG needs two or more codes; skipped")
    elif mig and "protocols" in mig:
        _print_disentanglement(mig)
    elif mig:
        gaps = ", ".join(f"{n} {g:.3f}" for n, g in zip(mig["factor_names"], mig["per_factor"]) if g is not None)
        print(f"MIG {mig['mig']:.4f} (per factor: {gaps}; the clustering images' codes)")


SUMMARY_TITLES = {
    "factor_vae": "FactorVAE", "beta_vae": "BetaVAE", "mig": "MIG", "dci_disentanglement": "DCI disentanglement",
    "dci_completeness": "DCI completeness", "dci_informativeness": "DCI informativeness", "sap": "SAP",
    "modularity": "modularity", "explicitness": "explicitness",
}  # fmt: skip


def _print_disentanglement(report: dict) -> None:
    """The metrics as a table, one column per protocol, then which code explains which factor."""
    results = report["protocols"]
    names = list(results)
    heads = [name + ("" if results[name]["at_reference_sizes"] else "*") for name in names]
    width = max(21, *(len(h) for h in heads))
    print(f"disentanglement on dSprites ({report['encoded']:,} images read by Q in {report['encode_seconds']:.0f} s):")
    print(f"  {'':22}" + "".join(f"{h:>{width + 2}}" for h in heads))
    keys = [key for key in SUMMARY_TITLES if any(key in results[n]["summary"] for n in names)]
    for key in keys:
        cells = ["-" if (c := results[n]["summary"].get(key)) is None else f"{c:.4f}" for n in names]
        print(f"  {SUMMARY_TITLES[key]:22}" + "".join(f"{c:>{width + 2}}" for c in cells))
    print(f"  {'seconds':22}" + "".join(f"{results[n]['total_seconds']:>{width + 2}.1f}" for n in names))
    if any(h.endswith("*") for h in heads):
        print("  * at other sizes than the protocol's own (the options are in evaluation.json)")
    matching = report["matching"]
    gaps = ", ".join(f"{n} {g:.3f}" for n, g in zip(report["factor_names"], report["per_factor"]) if g is not None)
    print(f"MIG {report['mig']:.4f} under {matching['protocol']} (per factor: {gaps})")
    print(f"codes matched to factors by I(code; factor) / H(factor), {matching['protocol']}'s MIG draws:")
    for code, match in matching["codes"].items():
        print(
            f"  {code}: {match['factor']} {match['normalized_information']:.3f}"
            f"  (next: {match['runner_up']} {match['runner_up_information']:.3f})"
        )


def _evaluation_path(args) -> Path:
    if args.out:
        return args.out
    return args.model / "evaluation.json" if args.model.is_dir() else args.model.with_name("evaluation.json")


# -- select ------------------------------------------------------------------------------------


def _add_select(commands) -> None:
    defaults = SelectionSizes()
    p = commands.add_parser(
        "select",
        help="rank runs without labels (ModelCentrality, or agreement of their clusterings); the top one wins",
    )
    p.add_argument("runs", nargs="+", type=Path, help="two or more run directories (or export folders, .safetensors)")
    p.add_argument(
        "--method",
        choices=("centrality", "agreement"),
        default="centrality",
        help="centrality: ModelCentrality, FactorVAE of each run's Q on each other run's generated data (any codes); "
        "agreement: NMI between the runs' assignments of the same real images to a categorical code's values "
        "(for runs that cluster)",
    )
    p.add_argument("--code", help="agreement: the categorical code to compare (default: the first)")
    p.add_argument(
        "--images",
        type=_positive_int,
        default=10000,
        help="agreement: training images (drawn with --seed, no labels read) every run assigns (default 10000)",
    )
    p.add_argument("--data-dir", type=Path, help="agreement: folder holding the data set files")
    p.add_argument(
        "--votes",
        type=_positive_int,
        default=defaults.votes,
        help=f"FactorVAE votes per pair of runs (default {defaults.votes})",
    )
    p.add_argument(
        "--batch",
        type=_at_least_two,
        default=defaults.batch,
        help=f"generated images per vote, one code fixed (default {defaults.batch})",
    )
    p.add_argument(
        "--variance-samples",
        type=_at_least_two,
        default=defaults.variance_samples,
        help=f"generated images that normalise each code's spread (default {defaults.variance_samples})",
    )
    p.add_argument(
        "--grid",
        type=_at_least_two,
        default=defaults.grid,
        help=f"values a continuous code takes as a factor (default {defaults.grid})",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the latents every generator is fed (agreement: of the images)"
    )
    p.add_argument("--out", type=Path, help="JSON file to write the ranking and every pairwise score to")
    _common(p)
    p.set_defaults(handler=cmd_select)


def _at_least_two(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be 2 or more, got {value}")
    return value


def cmd_select(args) -> int:
    if len(args.runs) < 2:
        raise InfoGANError(f"infogan select compares two or more runs; got {len(args.runs)}")
    names = [str(path) for path in args.runs]
    if args.method == "agreement":
        result = _select_by_agreement(args, names)
    else:
        sizes = SelectionSizes(args.votes, args.batch, args.variance_samples, args.grid, args.seed)
        models = _load_runs(args.runs, args.device)
        cost = selection_cost(len(models), sizes)
        _note(
            f"ModelCentrality of {len(models)} runs: {cost['generator']:,} generator and {cost['q']:,} Q forward passes"
        )
        result = select_models(models, names, sizes, progress=_note)
    if args.out:
        _write_text(args.out, json.dumps(result, indent=2) + "\n")  # first: printing may meet a closed pipe
    (_print_agreement if args.method == "agreement" else _print_selection)(result)
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _select_by_agreement(args, names: list[str]) -> dict:
    snapshots = [load_model(path) for path in args.runs]
    data = snapshots[0].config.data
    for path, snapshot in zip(args.runs, snapshots):
        if (snapshot.config.data.dataset, snapshot.config.data.path) != (data.dataset, data.path):
            raise InfoGANError(
                f"{path} was trained on {snapshot.config.data.dataset} and {args.runs[0]} on {data.dataset}; "
                "agreement compares runs of one data set"
            )
    images = load_training_images(data, snapshots[0].config.model, args.data_dir)
    rows = sample_rows(len(images), args.images, args.seed)
    images = images[rows] if isinstance(images, torch.Tensor) else images.gather(rows)  # dSprites: only these
    models = [InfoGAN.from_snapshot(snapshot, args.device) for snapshot in snapshots]
    _note(f"agreement of {len(models)} runs on {len(images):,} {data.dataset} training images (no labels read)")
    return select_by_agreement(models, images, names, args.code)


def _print_agreement(result: dict) -> None:
    print(
        f"agreement: NMI between the runs' assignments of {result['images']:,} unlabelled images "
        f"to the values of {result['code']}, in {result['seconds']:.1f} s"
    )
    _print_ranking(result, "pairwise NMI:", result["similarity"])


def _load_runs(paths: list[Path], device: str) -> list[InfoGAN]:
    """The models of runs to compare; every checkpoint is read and the code layouts compared
    before any model is built (building one recomputes its batch-norm statistics)."""
    snapshots = [load_model(path) for path in paths]
    shapes = [(s.config.model.image_channels, s.config.model.image_size, s.config.model.image_size) for s in snapshots]
    check_candidates(
        [Candidate(str(p), s.config.latent, None, None, shape) for p, s, shape in zip(paths, snapshots, shapes)]
    )
    return [InfoGAN.from_snapshot(snapshot, device) for snapshot in snapshots]


def _print_selection(result: dict) -> None:
    sizes, passes = result["sizes"], result["forward_passes"]
    print(
        f"ModelCentrality: FactorVAE ({result['protocol']} definitions) of each run's Q on each other run's "
        f"generated data, {sizes['votes']} votes of {sizes['batch']} images, spread over "
        f"{sizes['variance_samples']:,}, continuous codes on {sizes['grid']} values"
    )
    print(f"{passes['generator']:,} generator and {passes['q']:,} Q forward passes in {result['seconds']:.1f} s")
    _print_ranking(result, "pairwise scores (row: whose Q; column: whose generated data):", result["scores"])


def _print_ranking(result: dict, title: str, matrix: list[list]) -> None:
    """The ranking (the winner marked) and a pairwise matrix of a selection result."""
    print(f"{'rank':>4}  {'centrality':>10}  run")
    for entry in result["ranking"]:
        mark = "  <- selected" if entry["rank"] == 1 else ""
        print(f"{entry['rank']:>4}  {entry['centrality']:>10.4f}  {entry['run']}{mark}")
    print(title)
    for i, row in enumerate(matrix):
        cells = "".join(f"{'-' if v is None else f'{v:.3f}':>7}" for v in row)
        print(f"  {i + 1:>3} {cells}")


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
    p.add_argument(
        "--layout",
        choices=("panels", "rows"),
        default="panels",
        help="panels: one panel per code, rows of random draws; rows (PNG/JPEG): one row per code, all from "
        "the same draw, each labelled with its factor from evaluation.json",
    )
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
    if args.layout == "rows":
        return _traverse_rows(model, args)
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


def _traverse_rows(model: InfoGAN, args) -> int:
    """One row per code, every row from the same draw, labelled by evaluation.json (by MIG on dSprites)."""
    if args.out.suffix.lower() == ".gif":
        raise InfoGANError("--layout rows makes a still image; write a .png or .jpg")
    labels = read_labels(args.model, model.spec, model.config.data.dataset, model.step)
    rng = torch.Generator().manual_seed(args.seed)
    rows = code_rows_latents(model.spec, args.steps, tuple(args.range), rng)
    if args.code:
        rows = [(name, latent) for name, latent in rows if name == args.code]
    figure = labelled_rows([(labels.codes[name].title, model.generate_from(latent)) for name, latent in rows])
    save_pil_atomically(figure, args.out)
    if labels.note:
        print(f"note: {labels.note}", file=sys.stderr)
    for name, _ in rows:
        print(f"{name}: {labels.codes[name].title}")
    print(f"wrote {args.out} (one row per code)")
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
    from infogan.config import resolve_config
    from infogan.viz.curves import code_titles, plot_curves, read_metrics

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
        from infogan.explore.server import explore
    except ImportError as exc:
        raise InfoGANError(f"infogan explore needs the explore extra ({exc}): pip install 'infogan[explore]'") from None
    explore([args.model] + ([args.model2] if args.model2 else []), args.host, args.port, tuple(args.range), args.device)
    return 0


# -- quality-net: the feature classifier of the sample-quality score (infogan.evaluation.quality) ----------


def _add_quality_net(commands) -> None:
    from infogan.evaluation.quality import LABELLED_DATASETS

    p = commands.add_parser(
        "quality-net", help="the feature classifier of the sample-quality score: train it once per data set"
    )
    actions = p.add_subparsers(dest="action", required=True)
    train = actions.add_parser("train", help="train it on the data set's training split, test it, cache it")
    train.add_argument("--dataset", required=True, choices=LABELLED_DATASETS)
    train.add_argument("--epochs", type=_positive_int, default=4, help="passes over the training images (default 4)")
    train.add_argument("--limit", type=_positive_int, help="train on the first N training images only (default: all)")
    train.add_argument("--batch-size", type=_positive_int, default=128, help="default 128")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--force", action="store_true", help="replace the cached classifier of this data set")
    train.add_argument("--data-dir", type=Path)
    _common(train)
    train.set_defaults(handler=cmd_quality_net_train)
    show = actions.add_parser("show", help="check the cached classifier of a data set and print its facts")
    show.add_argument("--dataset", required=True, choices=LABELLED_DATASETS)
    show.set_defaults(handler=cmd_quality_net_show)


def cmd_quality_net_train(args) -> int:
    from infogan.evaluation.quality import train_feature_classifier
    from infogan.runtime import resolve_device

    network = train_feature_classifier(
        args.dataset,
        epochs=args.epochs,
        seed=args.seed,
        limit=args.limit,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        overwrite=args.force,
        device=resolve_device(args.device),
        log=lambda line: print(f"{args.dataset}: {line}", flush=True),
    )
    _print_classifier(network.metadata)
    return 0


def cmd_quality_net_show(args) -> int:
    from infogan.evaluation.quality import load_feature_classifier

    _print_classifier(load_feature_classifier(args.dataset).metadata)
    return 0


def _print_classifier(meta: dict) -> None:
    print(
        f"{meta['dataset']}: test accuracy {meta['test_accuracy']:.4f} on {meta['test_images']} test images "
        f"({meta['epochs']} epochs on {meta['train_images']} training images, {meta['train_seconds']} s, "
        f"seed {meta['seed']}, architecture {meta['architecture_hash']})"
    )
    print(f"cached in {meta['path']}")


def _quality_for(model: InfoGAN, args) -> dict:
    """The sample-quality score `infogan evaluate` reports, or {"score": None, "note": why not}."""
    from infogan.evaluation.quality import LABELLED_DATASETS, quality_score

    dataset = model.config.data.dataset
    if args.quality_samples == 0:
        return {"score": None, "note": "skipped (--quality-samples 0)"}
    if dataset not in LABELLED_DATASETS:
        return {"score": None, "note": f"{dataset} has no labelled training split to train a feature classifier on"}
    if args.quality_samples < 2:
        raise InfoGANError("--quality-samples must be 0 (skip) or 2 or more (a covariance needs two samples)")
    try:
        return quality_score(model, args.quality_samples, args.seed, args.data_dir)
    except InfoGANError as exc:  # no classifier cached (the message says how to train one), or a damaged one
        return {"score": None, "note": str(exc)}


def _print_quality(quality: dict) -> None:
    if quality["score"] is None:
        print(f"quality score: not measured: {quality['note']}")
        return
    print(
        f"quality score {quality['score']:.3f} (Frechet distance, {quality['samples']} generated vs "
        f"{quality['reference_images']} test images, in the features of a classifier with test accuracy "
        f"{quality['classifier_accuracy']:.4f}; lower is better)"
    )


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


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
