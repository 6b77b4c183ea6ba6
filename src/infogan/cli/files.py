"""`infogan encode` and `infogan export`: codes of real images, and a model's weights as files."""

from __future__ import annotations

from pathlib import Path

from infogan.cli.common import MODEL_HELP, add_device_options
from infogan.evaluation.encoding import encode_files
from infogan.model import load


def add_commands(commands) -> None:
    _add_encode(commands)
    _add_export(commands)


def _add_encode(commands) -> None:
    p = commands.add_parser("encode", help="predict the codes of real images (image files or an IDX file)")
    p.add_argument("model", type=Path, help=MODEL_HELP)
    p.add_argument("inputs", nargs="+", type=Path, help="PNG/JPEG files or IDX image files (.gz or not)")
    p.add_argument("--out", required=True, type=Path, help=".csv (with a header) or .npy (N x codes)")
    add_device_options(p)
    p.set_defaults(handler=cmd_encode)


def cmd_encode(args) -> int:
    encoded = encode_files(args.model, args.inputs, args.out, device=args.device)
    print(f"wrote {args.out}: {len(encoded.sources)} images, columns {', '.join(encoded.codes)}")
    return 0


def _add_export(commands) -> None:
    p = commands.add_parser("export", help="write model.safetensors and config.json (no pickle)")
    p.add_argument("model", type=Path, help=MODEL_HELP)
    p.add_argument("--out", required=True, type=Path, help="folder to write")
    p.add_argument("--force", action="store_true", help="overwrite an export already in the folder")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (half the size; loads as float32)")
    add_device_options(p)
    p.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    folder = load(args.model, args.device).export(args.out, overwrite=args.force, half=args.half)
    print(f"wrote {folder}/model.safetensors and {folder}/config.json")
    return 0
