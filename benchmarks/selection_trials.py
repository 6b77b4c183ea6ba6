"""How often label-free selection by agreement picks a good run: trials of K runs from a pool.

Every run of the pool (run directories of one setting, differing in seed) assigns the same
unlabelled training images to the values of its categorical code (`--images`, drawn with
`--seed`, no labels read), and every pair of runs gets the NMI between their assignments, as
`infogan select --method agreement` computes it. A trial takes K runs of the pool, picks the run
with the highest mean NMI to the other K - 1 (exactly what `infogan select` would pick among
those K) and checks the pick against the runs' accuracy on the labelled test split (Hungarian
matching), which selection never sees: is it in the top half of the K (rank <= K / 2, ties
counted in the pick's favour), is it the best, how far is it below the trial's best (regret),
does it fall below `--floor`? Beside them: how many picks a random choice would put in the top
half (the chance baseline) and how many trials hold a run below the floor. `--trials` trials
are drawn at random from the pool's K-subsets (every subset when there are no more than that);
every subset is also scored.

    python benchmarks/selection_trials.py /work/runs/fashion-aug1-s{0,1,2,3,4} --k 4 --trials 5 \
        --out benchmarks/results/fashion-mnist/selection-aug1.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

import infogan
from infogan.data import load_split
from infogan.evaluation.selection import sample_rows, select_by_agreement

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist import machine_info  # noqa: E402


def rank(run: int, subset: tuple[int, ...], accuracy: np.ndarray) -> int:
    """1 + the number of the subset's runs strictly more accurate than `run` (ties in its favour)."""
    return 1 + int(sum(accuracy[j] > accuracy[run] for j in subset))


def centrality_within(subset: tuple[int, ...], similarity: np.ndarray) -> list[float]:
    """Each run's mean similarity to the subset's other runs: what `infogan select` ranks by."""
    inner = similarity[np.ix_(subset, subset)]
    return [float(np.nanmean(np.delete(inner[i], i))) for i in range(len(subset))]


def trial(subset: tuple[int, ...], similarity: np.ndarray, accuracy: np.ndarray, floor: float) -> dict:
    """The subset's most central run, judged against the accuracies."""
    return judge(subset, subset[int(np.argmax(centrality_within(subset, similarity)))], accuracy, floor)


def judge(subset: tuple[int, ...], pick: int, accuracy: np.ndarray, floor: float) -> dict:
    """How the run `pick` of `subset` compares by test accuracy with the subset's other runs."""
    better = rank(pick, subset, accuracy) - 1
    accuracies = accuracy[list(subset)]
    return {
        "runs": list(subset),
        "picked": pick,
        "picked_accuracy": float(accuracy[pick]),
        "rank": better + 1,
        "top_half": better + 1 <= len(subset) / 2,
        "best": better == 0,
        "mean_accuracy": float(np.mean(accuracies)),
        "regret": float(accuracies.max() - accuracy[pick]),
        "below_floor": bool(accuracy[pick] < floor),
        "has_run_below_floor": bool(accuracies.min() < floor),
        # the chance that a run picked at random from the subset is in its top half
        "chance_top_half": float(np.mean([rank(j, subset, accuracy) <= len(subset) / 2 for j in subset])),
    }


def accuracies_on(models, code: str, images, labels) -> np.ndarray:
    """Each model's clustering accuracy of `code` on the labelled images (Hungarian matching)."""
    truth = labels.numpy()
    return np.array([infogan.cluster_metrics(m.encode(images)[code].numpy(), truth)["accuracy"] for m in models])


def tally(trials: list[dict]) -> dict:
    return {
        "trials": len(trials),
        "top_half": sum(t["top_half"] for t in trials),
        "best": sum(t["best"] for t in trials),
        "mean_picked_accuracy": round(float(np.mean([t["picked_accuracy"] for t in trials])), 4),
        "mean_accuracy_of_the_trials_runs": round(float(np.mean([t["mean_accuracy"] for t in trials])), 4),
        "mean_regret": round(float(np.mean([t["regret"] for t in trials])), 4),
        "top_half_by_chance": round(float(sum(t["chance_top_half"] for t in trials)), 2),
        "with_a_run_below_floor": sum(t["has_run_below_floor"] for t in trials),
        "picked_below_floor": sum(t["below_floor"] for t in trials),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--k", type=int, default=4, help="runs per trial")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--images", type=int, default=10000, help="unlabelled training images every run assigns")
    parser.add_argument("--seed", type=int, default=0, help="draws the images and the trials")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--floor", type=float, default=0.63, help="test accuracy a pick should not fall below")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not 2 <= args.k <= len(args.runs):
        parser.error(f"--k must be between 2 and the number of runs ({len(args.runs)})")
    torch.set_num_threads(args.threads)
    models = [infogan.load(run) for run in args.runs]
    dataset = models[0].config.data.dataset
    train_images, _ = load_split(dataset, "train", args.data_dir)
    rows = sample_rows(len(train_images), args.images, args.seed)  # the images infogan select reads
    names = [str(run) for run in args.runs]
    selection = select_by_agreement(models, train_images[rows], names)
    similarity = np.array(selection["similarity"], dtype=float)
    test_images, test_labels = load_split(dataset, "test", args.data_dir)
    code = selection["code"]
    accuracy = accuracies_on(models, code, test_images, test_labels)
    subsets = list(itertools.combinations(range(len(models)), args.k))
    rng = np.random.default_rng(args.seed)
    drawn = (
        subsets
        if len(subsets) <= args.trials
        else [subsets[i] for i in rng.choice(len(subsets), args.trials, replace=False)]
    )
    trials = [trial(s, similarity, accuracy, args.floor) for s in drawn]
    every = [trial(s, similarity, accuracy, args.floor) for s in subsets]
    for t in trials:
        chosen = ", ".join(Path(names[i]).name for i in t["runs"])
        pick = Path(names[t["picked"]]).name
        print(f"[{chosen}]: picked {pick}, test accuracy {t['picked_accuracy']:.4f}, rank {t['rank']} of {args.k}")
    record = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine_info("cpu", args.threads),
        "dataset": dataset,
        "code": code,
        "k": args.k,
        "floor": args.floor,
        "images": len(rows),
        "runs": names,
        "test_accuracy": [round(float(a), 4) for a in accuracy],
        "similarity": selection["similarity"],
        "centrality_over_the_pool": selection["centrality"],
        "drawn": tally(trials) | {"list": trials},
        "every_subset": tally(every),
    }
    print(json.dumps({"drawn": tally(trials), "every_subset": tally(every)}, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
