"""`infogan select`: `infogan.select` with its ranking printed."""

from __future__ import annotations

from pathlib import Path

from infogan.cli.common import add_device_options, at_least_two, positive_int
from infogan.evaluation.run_selection import select
from infogan.evaluation.selection import SelectionSizes


def add_commands(commands) -> None:
    defaults = SelectionSizes()
    p = commands.add_parser(
        "select",
        help="rank runs without labels (ModelCentrality, or agreement of their clusterings); the top one wins",
    )
    p.add_argument(
        "runs",
        nargs="+",
        type=Path,
        help="two or more run directories (or export folders, .safetensors files, shipped models)",
    )
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
        type=positive_int,
        default=10000,
        help="agreement: training images (drawn with --seed, no labels read) every run assigns (default 10000)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="agreement: folder holding the data set files (default: the one the runs read, then INFOGAN_DATA_DIR...)",
    )
    p.add_argument(
        "--votes",
        type=positive_int,
        default=defaults.votes,
        help=f"FactorVAE votes per pair of runs (default {defaults.votes}; sizes needing over 4 GiB are refused)",
    )
    p.add_argument(
        "--batch",
        type=at_least_two,
        default=defaults.batch,
        help=f"generated images per vote, one code fixed (default {defaults.batch})",
    )
    p.add_argument(
        "--variance-samples",
        type=at_least_two,
        default=defaults.variance_samples,
        help=f"generated images that normalise each code's spread (default {defaults.variance_samples})",
    )
    p.add_argument(
        "--grid",
        type=at_least_two,
        default=defaults.grid,
        help=f"values a continuous code takes as a factor (default {defaults.grid})",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the latents every generator is fed (agreement: of the images)"
    )
    p.add_argument("--out", type=Path, help="JSON file to write the ranking and every pairwise score to")
    add_device_options(p)
    p.set_defaults(handler=cmd_select)


def cmd_select(args) -> int:
    sizes = SelectionSizes(args.votes, args.batch, args.variance_samples, args.grid, args.seed)
    result = select(
        args.runs,
        args.method,
        sizes=sizes,
        seed=args.seed,
        code=args.code,
        images=args.images,
        data_dir=args.data_dir,
        out=args.out,
        device=args.device,
    )
    (_print_agreement if args.method == "agreement" else _print_selection)(result)
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _print_agreement(result: dict) -> None:
    print(
        f"agreement: NMI between the runs' assignments of {result['images']:,} unlabelled images "
        f"to the values of {result['code']}, in {result['seconds']:.1f} s"
    )
    _print_ranking(result, "pairwise NMI:", result["similarity"])


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
