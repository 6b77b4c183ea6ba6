"""`infogan encode` and `infogan export`: codes of real images, and a model's weights as files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from infogan.cli.common import add_device_options, write_text
from infogan.data.inputs import read_inputs
from infogan.errors import InfoGANError
from infogan.fileio import write_output
from infogan.model import InfoGAN, load


def add_commands(commands) -> None:
    _add_encode(commands)
    _add_export(commands)


def _add_encode(commands) -> None:
    p = commands.add_parser("encode", help="predict the codes of real images (image files or an IDX file)")
    p.add_argument("model", type=Path)
    p.add_argument("inputs", nargs="+", type=Path, help="PNG/JPEG files or IDX image files (.gz or not)")
    p.add_argument("--out", required=True, type=Path, help=".csv (with a header) or .npy (N x codes)")
    add_device_options(p)
    p.set_defaults(handler=cmd_encode)


def cmd_encode(args) -> int:
    if args.out.suffix not in (".csv", ".npy"):
        raise InfoGANError(f"--out {args.out} must end in .csv or .npy")
    model = load(args.model, args.device)
    images, sources = read_inputs(args.inputs, model.config.model.image_channels, model.config.model.image_size)
    codes = model.encode(images)
    names = list(codes)
    table = np.stack([codes[n].float().numpy() for n in names], axis=1) if names else np.zeros((len(sources), 0))
    if args.out.suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, table.astype(np.float32))
        write_output(args.out, buffer.getvalue())
    else:
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["source", *names])
        for source, row in zip(sources, table):
            writer.writerow([source, *(_format_code(model, n, v) for n, v in zip(names, row))])
        write_text(args.out, text.getvalue())
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
    add_device_options(p)
    p.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    folder = load(args.model, args.device).export(args.out, overwrite=args.force)
    print(f"wrote {folder}/model.safetensors and {folder}/config.json")
    return 0
