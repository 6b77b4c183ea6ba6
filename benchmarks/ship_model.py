"""Ship a trained model inside the package: export a run's newest checkpoint into
src/infogan/shipped/NAME/, evaluate it on the full test split, and write its card.

    python benchmarks/ship_model.py runs/mnist --name mnist --title "MNIST digits, c1 = the digit" \\
        --command "infogan train --preset mnist-laptop --seed 0 --out runs/mnist" --data-dir ../shared/data

The folder gets the export (model.safetensors, config.json; the config's runtime.data_dir
blanked, since it names a folder of the machine that trained it), evaluation.json (what
`infogan evaluate` writes: the explorer and `traverse` title the codes from it), card.json
(the facts, machine readable: see docs/shipped-models.md) and README.md (the same facts for
people). Seed, steps and precision come from the checkpoint's config; the training time from
the run's logs (metrics.jsonl's windows: steps x batch / images_per_s, the start excluded).
The commit and the processor come from the run's history (history.jsonl records both at each
start and resume), unless --commit and --processor say otherwise; a run from before they were
recorded gets this checkout's and this machine's, and the script says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

import torch

import infogan.checkpoint as ckpt
from infogan.errors import InfoGANError
from infogan.evaluation.report import REPORT_NAME, evaluate_run
from infogan.fileio import read_jsonl, write_bytes_atomically
from infogan.model import CALIBRATION_IMAGES, EXPORT_FILES, InfoGAN, load
from infogan.provenance import processor_name, source_commit
from infogan.shipped import CARD, ROOT, WEIGHTS, sha256_of

REPO = Path(__file__).resolve().parents[1]
NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
OUR_FILES = (*EXPORT_FILES, REPORT_NAME, CARD, "README.md")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        card = ship(args)
    except InfoGANError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    folder = Path(args.into) / args.name
    accuracy = card["evaluation"]["accuracy"]
    score = "no labels" if accuracy is None else f"{card['evaluation']['code']} accuracy {accuracy:.4f}"
    print(f"shipped {args.name} into {folder}: step {card['steps']}, {score}, sha256 {card['sha256'][:12]}...")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="the run directory whose newest checkpoint is shipped")
    p.add_argument("--name", required=True, help="the name users open it by (lower case, digits, '-')")
    p.add_argument("--title", required=True, help="one line saying what it is")
    p.add_argument("--command", required=True, help="the exact command that trained it")
    p.add_argument("--data-dir", type=Path, help="folder holding the data set (default: the run's, then as usual)")
    p.add_argument("--into", type=Path, default=ROOT, help=f"folder of the shipped models (default {ROOT})")
    p.add_argument("--commit", help="commit the run was trained at (default: this checkout's HEAD)")
    p.add_argument("--processor", help="processor it was trained on (default: this machine's, or its GPU's)")
    p.add_argument("--quality-samples", type=int, default=10000, help="for the quality score (0 skips it)")
    p.add_argument("--device", default="cpu", help="where the evaluation runs (default cpu)")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
    p.add_argument("--force", action="store_true", help="replace a shipped model of that name")
    return p.parse_args(argv)


def ship(args: argparse.Namespace) -> dict:
    """Export, evaluate and describe the run's newest checkpoint; return the card."""
    if not NAME.fullmatch(args.name):
        raise InfoGANError(f"--name {args.name!r}: use lower-case letters, digits and '-' (it is a folder name)")
    if "\n" in args.title or not args.title.strip():
        raise InfoGANError("--title must be one line")
    folder = Path(args.into) / args.name
    if folder.exists() and not args.force:
        raise InfoGANError(f"{folder} exists; pass --force to replace the shipped model {args.name}")
    snapshot = ckpt.load_snapshot(ckpt.latest_checkpoint(args.run_dir))  # the newest: never an older one quietly
    config = snapshot.config.replace(**{"runtime.data_dir": ""})  # the trainer's folder means nothing elsewhere
    snapshot = dataclasses.replace(snapshot, config=config)
    recorded = recorded_provenance(args.run_dir)
    provenance = {
        "commit": args.commit or recorded.get("commit") or this_commit(),
        "processor": args.processor or recorded.get("processor") or this_processor(config),
    }
    seconds = train_seconds(args.run_dir, config.optim.batch_size)
    remove_ours(folder)  # a model half replaced is no model: its old files go first
    try:
        InfoGAN.from_snapshot(snapshot).export(folder, half=args.half)
        shipped = load(folder, args.device)  # what users get: the export, read back
        report = evaluate_run(shipped, split="test", out=folder / REPORT_NAME, quality_samples=args.quality_samples,
                              data_dir=args.data_dir, device=args.device)  # fmt: skip
        card = make_card(args, snapshot, report, provenance, seconds)
        card.update(sha256=sha256_of(folder / WEIGHTS), bytes=(folder / WEIGHTS).stat().st_size)
        card["stored_as"] = "float16" if args.half else "float32"
        write_bytes_atomically(folder / "README.md", readme(card).encode("utf-8"))
        write_bytes_atomically(folder / CARD, (json.dumps(card, indent=2) + "\n").encode("utf-8"))  # last: now shipped
    except BaseException:
        remove_ours(folder)
        raise
    return card


def remove_ours(folder: Path) -> None:
    """Delete the files this script writes in `folder`, and the folder once it is empty."""
    for name in OUR_FILES:
        (folder / name).unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def make_card(args, snapshot: ckpt.Snapshot, report: dict, provenance: dict, seconds: float | None) -> dict:
    config = snapshot.config
    runtime = config.runtime
    return {
        "name": args.name,
        "title": args.title.strip(),
        "dataset": config.data.dataset,
        "command": args.command,
        "commit": provenance["commit"],
        "seed": config.seed,
        "steps": snapshot.step,
        "train_seconds": seconds,
        "machine": {
            "processor": provenance["processor"],
            "device": runtime.device,
            "threads": runtime.threads,
            "precision": runtime.precision,
        },
        "evaluation": evaluation_summary(report, config),
    }


def evaluation_summary(report: dict, config) -> dict:
    """The card's evaluation: the first categorical code scored on every test image."""
    clustering, quality = report["clustering"], report["quality"]
    code = next(iter(clustering), None)
    scores = clustering.get(code, {})
    summary = {
        "protocol": protocol(code, config.data.dataset, report["images"]),
        "split": report["split"],
        "images": report["images"],
        "code": code,
        "accuracy": scores.get("accuracy"),
        "nmi": scores.get("nmi"),
        "ari": scores.get("ari"),
        "quality_score": quality["score"],
    }
    if quality["score"] is None:
        summary["quality_note"] = quality["note"]
    return summary


def protocol(code: str | None, dataset: str, images: int) -> str:
    if code is None:
        return f"infogan evaluate: {dataset} has no labels (or the model no categorical code): nothing is scored"
    return (
        f"infogan evaluate: the values of {code} matched one-to-one to the {dataset} classes (Hungarian method) on "
        f"all {images:,} test images; accuracy under that matching, NMI and ARI. D's batch norm is set from "
        f"{CALIBRATION_IMAGES:,} generated images (seed 0) when the model is loaded"
    )


def train_seconds(run_dir: Path, batch_size: int) -> float | None:
    """Seconds of training by the run's metrics log: each line's window of steps (since the
    previous line, or the start or resume that began it) times the batch over its images/s.
    None when the log is missing."""
    metrics, history = Path(run_dir, "metrics.jsonl"), Path(run_dir, "history.jsonl")
    if not metrics.is_file():
        return None
    records, _ = read_jsonl(metrics)
    events = read_jsonl(history)[0] if history.is_file() else []
    starts = [e["step"] for e in events if e.get("event") in ("start", "resume")]
    total, previous = 0.0, 0
    for record in records:
        if not record.get("images_per_s"):
            return None
        begin = max([previous, *(s for s in starts if s < record["step"])])
        total += (record["step"] - begin) * batch_size / record["images_per_s"]
        previous = record["step"]
    return round(total, 1)


def recorded_provenance(run_dir: Path) -> dict[str, str]:
    """The commit and processor the run's history recorded when it started ({} for a run from
    before they were recorded); a resume on another commit or machine is noted."""
    path = Path(run_dir) / "history.jsonl"
    entries = read_jsonl(path)[0] if path.is_file() else []
    found = [_provenance_of(e) for e in entries if isinstance(e, dict) and "machine" in e]
    if not found:
        return {}
    if any(f != found[0] for f in found[1:]):
        print(f"note: the run was resumed on another commit or machine: {found}", file=sys.stderr)
    return found[0]


def _provenance_of(entry: dict) -> dict[str, str]:
    machine, source = entry.get("machine") or {}, entry.get("source")
    found = {"processor": machine.get("gpu") or machine.get("processor") or ""}
    if source:
        found["commit"] = source["commit"] + (" (src/ had uncommitted changes)" if source.get("src_changed") else "")
    return {k: v for k, v in found.items() if v}


def this_commit() -> str:
    """This checkout's commit (infogan.provenance's reading of it), said to be taken from here."""
    source = source_commit()
    if source is None:
        raise InfoGANError(f"cannot read the commit of {REPO} with git; give --commit")
    note = "; src/ has uncommitted changes" if source["src_changed"] else ""
    print(f"note: commit {source['commit'][:12]} is this checkout's HEAD, not recorded by the run{note} (--commit)",
          file=sys.stderr)  # fmt: skip
    return source["commit"]


def this_processor(config) -> str:
    """This machine's processor (or GPU, for a run on one), said to be taken from here."""
    if config.runtime.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InfoGANError("the run trained on a CUDA GPU and none is here to name; give --processor")
        name = torch.cuda.get_device_name()
    else:
        name = processor_name()
    print(f"note: processor {name!r} is this machine's, not recorded by the run (--processor)", file=sys.stderr)
    return name


def readme(card: dict) -> str:
    """The human model card."""
    name, machine, evaluation = card["name"], card["machine"], card["evaluation"]
    seconds = "not in the run's logs" if card["train_seconds"] is None else f"{card['train_seconds']:,.0f} s"
    threads = machine["threads"] or "PyTorch's default"
    lines = [
        f"# {card['title']}",
        "",
        f"`{name}`: an InfoGAN trained on {card['dataset']}, shipped with infogan. Open it by its name:",
        "",
        f"    infogan explore {name}",
        f"    infogan traverse {name} --out traverse.png",
        "",
        f'or from Python: `model = infogan.load("{name}")`; `infogan.model_card("{name}")` is this card.',
        "",
        "## Training",
        "",
        f"- command: `{card['command']}`",
        f"- commit: {card['commit']}",
        f"- data: the {card['dataset']} training split",
        f"- seed {card['seed']}, {card['steps']:,} steps, training time {seconds} (the metrics log's windows)",
        f"- machine: {machine['processor']}, device {machine['device']}, threads {threads}, {machine['precision']}",
        "",
        "## Evaluation",
        "",
        f"{evaluation['protocol']}.",
        "",
    ]
    if evaluation["accuracy"] is not None:
        lines += [
            "| code | images | accuracy | NMI | ARI | quality score |",
            "| --- | --- | --- | --- | --- | --- |",
            f"| {evaluation['code']} | {evaluation['images']:,} | {evaluation['accuracy']:.4f} | "
            f"{evaluation['nmi']:.4f} | {evaluation['ari']:.4f} | {_quality(evaluation)} |",
            "",
        ]
    lines += [
        "The whole report (confusion matrix, matching, information bounds) is in evaluation.json.",
        "",
        "## Files",
        "",
        f"model.safetensors ({card['bytes']:,} bytes, weights stored as {card.get('stored_as', 'float32')}, "
        f"SHA-256 `{card['sha256']}`) and config.json, as `infogan export` writes them; evaluation.json; "
        "card.json. The SHA-256 is checked each time the model is opened by its name. The evaluation above is "
        "of these stored weights, read back as a user gets them.",
    ]
    return "\n".join(lines) + "\n"


def _quality(evaluation: dict) -> str:
    score = evaluation["quality_score"]
    return "not measured" if score is None else f"{score:.3f}"


if __name__ == "__main__":
    sys.exit(main())
