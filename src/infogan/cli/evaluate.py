"""`infogan evaluate`: `infogan.evaluate_run` with its report printed."""

from __future__ import annotations

import argparse
from pathlib import Path

from infogan.cli.common import MODEL_HELP, add_device_options, non_negative_int, note, positive_int
from infogan.evaluation.disentanglement import METRICS
from infogan.evaluation.report import PROTOCOL_CHOICES, evaluate_run, factors_path, report_target
from infogan.model import load

SUMMARY_TITLES = {
    "factor_vae": "FactorVAE", "beta_vae": "BetaVAE", "mig": "MIG", "dci_disentanglement": "DCI disentanglement",
    "dci_completeness": "DCI completeness", "dci_informativeness": "DCI informativeness", "sap": "SAP",
    "modularity": "modularity", "explicitness": "explicitness",
}  # fmt: skip


def add_commands(commands) -> None:
    p = commands.add_parser(
        "evaluate",
        help="clustering metrics on the test split and information bounds; on dSprites the disentanglement metrics",
    )
    p.add_argument("model", type=Path, help=MODEL_HELP)
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--samples", type=positive_int, default=10000, help="fresh samples for the information bounds")
    p.add_argument("--limit", type=positive_int, help="evaluate on the first N labelled images only (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", type=Path, help="JSON file to write (default: MODEL/evaluation.json; needed for a shipped model)"
    )
    p.add_argument(
        "--quality-samples",
        type=non_negative_int,
        default=10000,
        help="generated images for the sample-quality score (needs `infogan quality-net train`; 0 skips it)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="folder holding the data set files (default: the one the run read, then INFOGAN_DATA_DIR, ...)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOL_CHOICES,
        help="dSprites only: the disentanglement metrics under disentanglement_lib's protocol, InfoGAN-CR's, both "
        "(the default: one pass of Q over dSprites serves both) or none",
    )
    p.add_argument(
        "--metrics",
        type=metric_names,
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
    add_device_options(p)
    p.set_defaults(handler=cmd_evaluate)


def metric_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{unknown[0] if unknown else text!r} is not one of {', '.join(METRICS)}")
    return names


def cmd_evaluate(args) -> int:
    out = args.out or report_target(args.model)  # before the model is loaded: a shipped one needs --out
    model = load(args.model, args.device)
    report = evaluate_run(
        model,
        split=args.split,
        samples=args.samples,
        limit=args.limit,
        seed=args.seed,
        out=out,
        quality_samples=args.quality_samples,
        data_dir=args.data_dir,
        protocol=args.protocol,
        metrics=args.metrics,
        protocol_options=args.protocol_options,
        log=note,
    )
    on_factors = report.get("labels") == "shape"
    if report["images"] == 0:
        print(f"{model.config.data.dataset}: no labels, so only the information bounds are measured")
    print_report(report, on_factors)
    print_quality(report["quality"])
    print(f"wrote {out}" + (f" and {factors_path(out)}" if on_factors else ""))
    return 0


def print_report(result: dict, on_factors: bool) -> None:
    against = f"  (against shape, {result['images']} random dSprites images)" if on_factors else ""
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
    if on_factors and not mig:
        print("MIG needs two or more codes; skipped")
    elif mig and "protocols" in mig:
        print_disentanglement(mig)
    elif mig:
        gaps = ", ".join(f"{n} {g:.3f}" for n, g in zip(mig["factor_names"], mig["per_factor"]) if g is not None)
        print(f"MIG {mig['mig']:.4f} (per factor: {gaps}; the clustering images' codes)")


def print_disentanglement(report: dict) -> None:
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


def print_quality(quality: dict) -> None:
    if quality["score"] is None:
        print(f"quality score: not measured: {quality['note']}")
        return
    print(
        f"quality score {quality['score']:.3f} (Frechet distance, {quality['samples']} generated vs "
        f"{quality['reference_images']} test images, in the features of a classifier with test accuracy "
        f"{quality['classifier_accuracy']:.4f}; lower is better)"
    )
