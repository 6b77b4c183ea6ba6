"""`infogan sample` and `infogan traverse`: pictures of what a model generates."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from infogan.cli.common import MODEL_HELP, add_device_options, positive_int
from infogan.config import parse_override
from infogan.errors import InfoGANError
from infogan.evaluation.labels import read_labels
from infogan.model import load
from infogan.viz.samples import save_samples
from infogan.viz.traversal import SUFFIXES, save_traversal


def add_commands(commands) -> None:
    _add_sample(commands)
    _add_traverse(commands)


def _add_sample(commands) -> None:
    p = commands.add_parser("sample", help="a grid of generated images, with chosen codes")
    p.add_argument("model", type=Path, help=MODEL_HELP)
    p.add_argument("--out", required=True, type=Path, help="image file (.png or .jpg)")
    p.add_argument("-n", "--count", type=positive_int, default=64, help="images in the grid (at most 4,096)")
    p.add_argument("--columns", type=positive_int, default=8)
    p.add_argument(
        "--code",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="fix a code for every image, e.g. --code c1=7 --code c2=1.5 (continuous codes from -10 to 10)",
    )
    p.add_argument("--seed", type=int, default=0)
    add_device_options(p)
    p.set_defaults(handler=cmd_sample)


def cmd_sample(args) -> int:
    codes = dict(parse_code(text) for text in args.code)
    save_samples(
        args.model, args.out, count=args.count, columns=args.columns, codes=codes, seed=args.seed, device=args.device
    )
    print(f"wrote {args.out}")
    return 0


def parse_code(text: str) -> tuple[str, float]:
    name, sep, _ = text.partition("=")
    if not sep or not name.strip():  # not the config override's message: this is a code
        missing = "a value" if name.strip() else "a code name and a value"
        raise InfoGANError(f"--code {text}: give {missing}, like c1=3 or c2=0.5")
    name, value = parse_override(text)
    with contextlib.suppress(TypeError, ValueError):
        value = float(value) if isinstance(value, str) else value  # YAML reads nan, 1e-3 as text
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InfoGANError(f"--code {text!r} must look like NAME=NUMBER, e.g. c1=3 or c2=-1.5")
    return name, value


def _add_traverse(commands) -> None:
    p = commands.add_parser("traverse", help="vary one code along the columns, others fixed (paper Fig. 2)")
    p.add_argument("model", type=Path, help=MODEL_HELP)
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
        help="sweep of a continuous code, LOW < HIGH within -10 10 (default -2 2)",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=10,
        help="columns of a continuous sweep, 2 to 32 (a GIF goes through them and back)",
    )
    p.add_argument("--rows", type=positive_int, default=10, help="rows when they are random draws (at most 64)")
    p.add_argument("--frame-ms", type=positive_int, default=150, help="GIF only: how long each frame shows")
    p.add_argument(
        "--layout",
        choices=("panels", "rows"),
        default="panels",
        help="panels: one panel per code, rows of random draws; rows (PNG/JPEG): one row per code, all from "
        "the same draw, each labelled with its factor from evaluation.json",
    )
    p.add_argument("--seed", type=int, default=0)
    add_device_options(p)
    p.set_defaults(handler=cmd_traverse)


def cmd_traverse(args) -> int:
    if args.out.suffix.lower() not in SUFFIXES:  # before the model is loaded
        raise InfoGANError(f"--out {args.out} must end in .png, .jpg, .jpeg or .gif")
    model = load(args.model, args.device)
    titled = (args.layout == "rows") != (args.out.suffix.lower() == ".gif")  # still rows and GIF panels are titled
    labels = read_labels(args.model, model.spec, model.config.data.dataset, model.step) if titled else None
    names = save_traversal(
        model,
        args.out,
        code=args.code,
        value_range=tuple(args.range),
        steps=args.steps,
        rows=args.rows,
        frame_ms=args.frame_ms,
        layout=args.layout,
        seed=args.seed,
        labels=labels,
    )
    if args.layout == "rows":
        if labels.note:
            print(f"note: {labels.note}", file=sys.stderr)
        for name in names:
            print(f"{name}: {labels.codes[name].title}")
        print(f"wrote {args.out} (one row per code)")
    else:
        print(f"wrote {args.out} ({', '.join(names)})")
    return 0
