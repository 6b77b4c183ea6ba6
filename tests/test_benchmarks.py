"""The benchmark scripts' own measuring helpers (the scripts themselves run for minutes)."""

import multiprocessing
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import throughput  # noqa: E402


def _child_peak() -> int:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(throughput.peak_rss_bytes)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_peak_memory_of_a_spawned_child_is_its_own_not_its_parents():
    alone = _child_peak()
    ballast = bytearray(1024 * 2**20)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touch every page: 1 GB more resident here
    beside_ballast = _child_peak()
    assert throughput.peak_rss_bytes() > 1024 * 2**20
    assert abs(beside_ballast - alone) < 256 * 2**20  # ru_maxrss would have grown by the 1 GB
    del ballast


def test_medians_pick_the_middle_round_of_each_variant():
    rows = [
        {"preset": "mnist", "batch_size": 128, "variant": v, "images_per_s": ips, "round": r}
        for r, (v, ips) in enumerate([("a", 10.0), ("b", 5.0), ("a", 30.0), ("b", 7.0), ("a", 20.0), ("b", 6.0)])
    ]
    medians = {row["variant"]: row["images_per_s"] for row in throughput._medians(rows)}
    assert medians == {"a": 20.0, "b": 6.0}


def test_mnist_benchmark_records_a_curve_and_the_final_confusion_matrix(data_dir):
    import mnist

    job = {
        "preset": "mnist",
        "overrides": ["optim.batch_size=16"],
        "seed": 0,
        "steps": 2,
        "eval_every": 1,
        "threads": 0,
        "device": "cpu",
        "data_dir": str(data_dir),
    }
    result = mnist.run_seed(job)
    assert [entry["step"] for entry in result["curve"]] == [1, 2]
    assert "confusion" not in result["curve"][0]["c1"]
    confusion = result["final"]["c1"]["confusion"]
    assert len(confusion) == 10 and all(len(row) == 10 for row in confusion)
    assert sum(map(sum, confusion)) == 10000  # every test image counted once
    best = sum(max(row) for row in confusion) / 10000
    assert result["final"]["c1"]["accuracy"] <= best + 1e-9  # one digit per value cannot beat each row's best
    assert set(result["time_to"]) == {"0.90", "0.95"}
    within = result["within_60s"]  # two steps of batch 16 take far less than a minute
    assert within == {
        "step": 2,
        "train_seconds": result["final"]["train_seconds"],
        "accuracy": result["final"]["c1"]["accuracy"],
    }
    assert mnist._last_within(result["curve"], "c1", 0.0) is None


def test_mnist_benchmark_leaves_each_seeds_run_directory_when_asked(data_dir, tmp_path):
    import mnist

    import infogan

    job = {"preset": "mnist-laptop", "overrides": ["optim.batch_size=16"], "seed": 3, "steps": 2, "eval_every": 2,
           "threads": 0, "device": "cpu", "data_dir": str(data_dir), "run_dir": str(tmp_path)}  # fmt: skip
    mnist.run_seed(job)
    model = infogan.load(tmp_path / "seed3")
    assert model.step == 2 and model.config.seed == 3 and model.config.model.architecture == "mnist_small"


def test_a_selection_trial_scores_the_most_central_run_against_the_subsets_accuracies():
    import selection_trials

    similarity = np.array(
        [[np.nan, 0.9, 0.8, 0.5], [0.9, np.nan, 0.7, 0.5], [0.8, 0.7, np.nan, 0.5], [0.5, 0.5, 0.5, np.nan]]
    )
    accuracy = np.array([0.70, 0.72, 0.71, 0.55])
    t = selection_trials.trial((0, 1, 2, 3), similarity, accuracy, floor=0.63)
    assert t["picked"] == 0  # mean agreement 0.733, against 0.700, 0.667 and 0.5
    assert t["rank"] == 3 and not t["top_half"] and not t["best"]
    assert t["regret"] == pytest.approx(0.02)
    assert t["has_run_below_floor"] and not t["below_floor"]
    assert t["chance_top_half"] == 0.5  # runs 1 and 2 are the top half of four
    tied = selection_trials.trial((0, 1), similarity, np.array([0.7, 0.7, 0.0, 0.0]), floor=0.63)
    assert tied["rank"] == 1 and tied["top_half"] and tied["chance_top_half"] == 1.0
    summary = selection_trials.tally([t, tied])
    assert summary["top_half"] == 1 and summary["picked_below_floor"] == 0
    assert summary["with_a_run_below_floor"] == 1 and summary["top_half_by_chance"] == 1.5


def test_label_free_scores_of_a_run_are_bounded_and_reproducible(mnist_train):
    import selection_scores

    from infogan.config import config_from_dict
    from infogan.core.networks import build_networks
    from infogan.model import InfoGAN
    from infogan.training.augment import draw_transforms

    config = config_from_dict({"loss": {"lambda_augmented": 1.0, "augment_elastic": 1.5, "augment_gamma": 0.5}})
    torch.manual_seed(0)
    model = InfoGAN(config, *build_networks(config.model, config.latent), calibrate=False)
    images = mnist_train[0][:300]
    draws = [draw_transforms(300, config.loss, torch.Generator().manual_seed(s), "cpu") for s in (1, 2)]
    latent = model.sample_latent(200, generator=torch.Generator().manual_seed(3))
    first = selection_scores.run_scores(model, images, 0, draws, latent)
    again = selection_scores.run_scores(model, images, 0, draws, latent)
    assert first.keys() == again.keys() == {"assignment", *selection_scores.PER_RUN}
    assert np.array_equal(first["assignment"], again["assignment"]) and first["assignment"].shape == (300,)
    for key in selection_scores.PER_RUN:
        assert first[key] == again[key]
        assert 0 <= first[key] <= (np.log(10) + 1e-6 if key == "real_information" else 1)
    # no transform at all: every assignment survives and Q reads its own generated codes as it reads them plain
    plain = config_from_dict({"loss": {"lambda_augmented": 1.0, "augment_degrees": 0, "augment_shift": 0,
                                       "augment_scale": 0, "augment_shear": 0}})  # fmt: skip
    model.config = plain
    still = selection_scores.run_scores(model, images, 0, [torch.full((300, 6), 0.5)], latent)
    assert still["stability"] == 1.0


def test_each_score_picks_its_highest_run_in_every_subset():
    import selection_scores

    accuracy = np.array([0.50, 0.70, 0.60, 0.80])
    subsets = [(0, 1, 2, 3), (1, 2)]
    scores = np.array([3.0, 2.0, 1.0, 0.0])
    tally = selection_scores.every_subset(lambda s: int(np.argmax(scores[list(s)])), accuracy, subsets, floor=0.63)
    # (0, 1, 2, 3): picks run 0, the worst (regret 0.3, below the floor); (1, 2): picks run 1, the best
    expected = {"trials": 2, "top_half": 1, "top_half_by_chance": 1.0, "mean_regret": 0.15, "picked_below_floor": 1}
    assert {key: tally[key] for key in expected} == expected
