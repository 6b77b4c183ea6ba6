"""Which label-free score of a run predicts its clustering accuracy? Scores of one pool of runs,
and how often each would pick a top-half run among K.

Every score reads only unlabelled training images (`--images`, drawn with `--seed`, the rows
`infogan select --method agreement` reads) or the run's own generated images; the test labels are
read once per run, to score the scores:

- centrality: mean NMI of the run's assignment of the images to the others' (within each
  K-subset, as `infogan select --method agreement` computes it);
- stability: the fraction of images whose assigned value survives the run's own training
  transform (`infogan.training.augment.transform` with the run's `loss` ranges, the same draws for every
  run), averaged over `--draws` draws;
- real_information: H(mean p) - mean H(p) in nats of Q's softmax p on the images, an estimate of
  the information the code carries about real images (log K at most);
- balance: the entropy of the assignment's histogram over log K (1 for equal clusters);
- augmented_bound: Q's accuracy at reading c back from transformed generated images (the
  augmented term's own task; `--generated` images, c drawn uniformly).

For each score the file holds its Spearman correlation with test accuracy over the pool, and
over every K-subset the count of picks (argmax of the score) in the top half, the mean regret
and the picks below `--floor`, beside the chance baseline.

    python benchmarks/selection_scores.py runs/lam4-s{0,1,2,3,4,5,6,7,8,9} --k 4 --threads 1 \
        --out benchmarks/results/fashion-mnist/selection-scores-cluster-lambda4-seeds0-9.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

import infogan
from infogan.data import load_split
from infogan.evaluation.selection import agreement_ranking, sample_rows
from infogan.training.augment import draw_transforms, transform

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist import machine_info  # noqa: E402
from selection_trials import accuracies_on, centrality_within, judge, tally  # noqa: E402

PER_RUN = ("stability", "real_information", "balance", "augmented_bound")


def softmax_of(model, images: torch.Tensor, code_index: int) -> torch.Tensor:
    return model.q_output(images).categorical_logits[code_index].float().softmax(dim=1)


def transformed(model, images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """`images` (uint8 or floats in [0, 1]) through the run's training transform, back in [0, 1]."""
    low, high = model.config.model.image_range
    if images.dtype == torch.uint8:  # the data set's bytes
        images = images.float() / 255.0
    if images.ndim == 3:
        images = images.unsqueeze(1)
    return (transform(images * (high - low) + low, draws, model.config.loss, (low, high)) - low) / (high - low)


def entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.clamp_min(1e-12).log()).sum(dim=-1)


def run_scores(model, images: torch.Tensor, code_index: int, draws: list[torch.Tensor], latent) -> dict:
    p = softmax_of(model, images, code_index)
    assigned = p.argmax(dim=1)
    values = p.shape[1]
    kept = [(softmax_of(model, transformed(model, images, d), code_index).argmax(dim=1) == assigned) for d in draws]
    counts = torch.bincount(assigned, minlength=values).double()
    generated = model.generate_from(latent)
    gen_draws = draw_transforms(len(generated), model.config.loss, torch.Generator().manual_seed(1), "cpu")
    read = softmax_of(model, transformed(model, generated, gen_draws), code_index).argmax(dim=1)
    truth = latent.categorical[:, code_index]
    return {
        "assignment": assigned.numpy(),
        "stability": float(torch.stack(kept).float().mean()),
        "real_information": float(entropy(p.mean(dim=0)) - entropy(p).mean()),
        "balance": float(entropy(counts / counts.sum()) / math.log(values)),
        "augmented_bound": float((read == truth).float().mean()),
    }


def every_subset(pick_in, accuracy: np.ndarray, subsets, floor: float) -> dict:
    """`selection_trials.tally` of the run `pick_in(subset)` (an index into the subset) picks in each subset."""
    return tally([judge(s, s[pick_in(s)], accuracy, floor) for s in subsets])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--generated", type=int, default=10000)
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--floor", type=float, default=0.63)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not 2 <= args.k <= len(args.runs):
        parser.error(f"--k must be between 2 and the number of runs ({len(args.runs)})")
    torch.set_num_threads(args.threads)
    models = [infogan.load(run) for run in args.runs]
    if not all(m.spec.categorical_names for m in models):
        parser.error("every run needs a categorical code: these scores judge the clustering of its first one")
    names = [str(run) for run in args.runs]
    dataset = models[0].config.data.dataset
    code = models[0].spec.categorical_names[0]
    code_index = 0
    train_images, _ = load_split(dataset, "train", args.data_dir)
    images = train_images[sample_rows(len(train_images), args.images, args.seed)]
    loss = models[0].config.loss
    generator = torch.Generator().manual_seed(args.seed)
    draws = [draw_transforms(len(images), loss, generator, "cpu") for _ in range(args.draws)]
    latent = models[0].sample_latent(args.generated, generator=torch.Generator().manual_seed(args.seed))
    test_images, test_labels = load_split(dataset, "test", args.data_dir)
    per_run = [run_scores(model, images, code_index, draws, latent) for model in models]
    accuracy = accuracies_on(models, code, test_images, test_labels)
    for name, acc, scores in zip(names, accuracy, per_run):
        print(f"{Path(name).name}: accuracy {acc:.4f} " + " ".join(f"{k} {scores[k]:.4f}" for k in PER_RUN))
    similarity = np.array(agreement_ranking([s["assignment"] for s in per_run], names)["similarity"], dtype=float)
    subsets = list(itertools.combinations(range(len(models)), args.k))
    table = {"centrality": np.array(centrality_within(tuple(range(len(models))), similarity))}
    table |= {k: np.array([s[k] for s in per_run]) for k in PER_RUN}
    report = {}
    for key, values in table.items():

        def pick_in(subset, key=key, values=values):  # centrality within each subset, as infogan select ranks
            scores = centrality_within(subset, similarity) if key == "centrality" else values[list(subset)]
            return int(np.argmax(scores))

        report[key] = {
            "values": [round(float(v), 4) for v in values],
            "spearman_with_accuracy": round(float(spearmanr(values, accuracy).statistic), 3),
            "every_subset": every_subset(pick_in, accuracy, subsets, args.floor),
        }
        print(key, json.dumps(report[key]["every_subset"]))
    record = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine_info("cpu", args.threads),
        "dataset": dataset,
        "code": code,
        "k": args.k,
        "floor": args.floor,
        "images": len(images),
        "generated": args.generated,
        "runs": names,
        "test_accuracy": [round(float(a), 4) for a in accuracy],
        "scores": report,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
