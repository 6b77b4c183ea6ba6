"""`infogan curves`, `infogan explore`, `infogan models` and `infogan quality-net`."""

from __future__ import annotations

import json
from pathlib import Path

from infogan.cli.common import MODEL_HELP, add_device_options, positive_int


def add_commands(commands) -> None:
    _add_curves(commands)
    _add_explore(commands)
    _add_models(commands)
    _add_quality_net(commands)


def _add_curves(commands) -> None:
    p = commands.add_parser("curves", help="plot the information bounds and losses of a run (needs matplotlib)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", required=True, type=Path, help="PNG file to write")
    p.set_defaults(handler=cmd_curves)


def cmd_curves(args) -> int:
    from infogan.viz.curves import save_curves

    records = save_curves(args.run_dir, args.out)
    print(f"wrote {args.out} ({len(records)} log points up to step {records[-1]['step']})")
    return 0


def _add_explore(commands) -> None:
    p = commands.add_parser("explore", help="a local web page: turn the codes, see the images, encode your own")
    p.add_argument("model", type=Path, help=MODEL_HELP)
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
        type=positive_int,
        default=1,
        help="CPU threads for PyTorch (default 1: each request is small; requests from several tabs run side by side)",
    )
    p.set_defaults(handler=cmd_explore)


def cmd_explore(args) -> int:
    from infogan.explore import explore

    explore([args.model] + ([args.model2] if args.model2 else []), args.host, args.port, tuple(args.range), args.device)
    return 0


def _add_models(commands) -> None:
    p = commands.add_parser(
        "models", help="list the trained models shipped with infogan (open one by name: infogan explore mnist)"
    )
    p.add_argument("name", nargs="?", help="print this shipped model's card")
    p.set_defaults(handler=cmd_models)


def cmd_models(args) -> int:
    from infogan.shipped import model_card, shipped_folder, shipped_models

    if args.name:
        print(json.dumps(model_card(args.name), indent=2))
        print(f"folder: {shipped_folder(args.name)} (its weights match the card's SHA-256)")
        return 0
    models = shipped_models()
    if not models:
        print("this infogan ships no models")
    for name, title in models.items():
        print(f"{name:16} {title}")
    return 0


def _add_quality_net(commands) -> None:
    from infogan.evaluation.quality import LABELLED_DATASETS

    p = commands.add_parser(
        "quality-net", help="the feature classifier of the sample-quality score: train it once per data set"
    )
    actions = p.add_subparsers(dest="action", required=True)
    train = actions.add_parser("train", help="train it on the data set's training split, test it, cache it")
    train.add_argument("--dataset", required=True, choices=LABELLED_DATASETS)
    train.add_argument("--epochs", type=positive_int, default=4, help="passes over the training images (default 4)")
    train.add_argument("--limit", type=positive_int, help="train on the first N training images only (default: all)")
    train.add_argument("--batch-size", type=positive_int, default=128, help="default 128")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--force", action="store_true", help="replace the cached classifier of this data set")
    train.add_argument("--data-dir", type=Path)
    add_device_options(train)
    train.set_defaults(handler=cmd_quality_net_train)
    show = actions.add_parser("show", help="check the cached classifier of a data set and print its facts")
    show.add_argument("--dataset", required=True, choices=LABELLED_DATASETS)
    show.set_defaults(handler=cmd_quality_net_show)


def cmd_quality_net_train(args) -> int:
    from infogan.evaluation.quality import train_feature_classifier

    network = train_feature_classifier(
        args.dataset,
        epochs=args.epochs,
        seed=args.seed,
        limit=args.limit,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        overwrite=args.force,
        device=args.device,
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
