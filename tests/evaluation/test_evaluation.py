import numpy as np

from infogan.evaluation.measures import cluster_metrics, mutual_information_gap


def test_a_relabelled_perfect_clustering_scores_one():
    labels = np.repeat(np.arange(10), 20)
    permutation = np.random.default_rng(0).permutation(10)
    result = cluster_metrics(permutation[labels], labels)
    assert result["accuracy"] == 1.0 and abs(result["nmi"] - 1) < 1e-9 and abs(result["ari"] - 1) < 1e-9
    assert [result["mapping"][permutation[c]] for c in range(10)] == list(range(10))


def test_accuracy_uses_the_best_one_to_one_matching():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    predicted = np.array([1, 1, 0, 2, 2, 2, 0, 0, 0])  # two cluster-1s match class 0, one stray
    result = cluster_metrics(predicted, labels)
    assert result["accuracy"] == 8 / 9
    assert result["confusion"][0] == [1, 0, 3]
    assert result["mapping"] == [2, 0, 1]


def test_merged_clusters_cannot_reach_full_accuracy():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 0, 0, 1, 1])
    assert cluster_metrics(predicted, labels)["accuracy"] == 4 / 6


def test_more_clusters_than_classes():
    labels = np.array([0, 0, 1, 1])
    predicted = np.array([0, 3, 1, 1])
    result = cluster_metrics(predicted, labels)
    assert result["accuracy"] == 3 / 4 and len(result["mapping"]) == 4 and result["mapping"].count(-1) == 2


def test_mig_rewards_one_code_per_factor_and_penalises_copies():
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, 3, 4000), rng.integers(0, 6, 4000), rng.integers(0, 10, 4000)], axis=1)
    noise = rng.normal(0, 0.01, (4000, 2))
    aligned = np.column_stack([factors[:, 0], factors[:, 1:] + noise])
    assert mutual_information_gap(aligned, factors, categorical=1)["mig"] > 0.95
    unrelated = np.column_stack([rng.integers(0, 3, 4000), rng.normal(size=(4000, 2))])
    assert mutual_information_gap(unrelated, factors, categorical=1)["mig"] < 0.02
    copied = np.column_stack([factors[:, 0], factors[:, 1] + noise[:, 0], factors[:, 1] + noise[:, 1]])
    result = mutual_information_gap(copied, factors, categorical=1)
    assert result["per_factor"][0] > 0.95 and result["per_factor"][1] < 0.01 and result["mig"] < 0.4
    constant = np.column_stack([factors, np.zeros(4000, dtype=np.int64)])
    assert mutual_information_gap(aligned, constant, categorical=1)["per_factor"][3] is None


def test_continuous_bounds_follow_how_well_q_reads_the_code(train_slice, monkeypatch):
    """The continuous bound is H(c) - 0.5 log(2 pi e MSE): a Gaussian q with the best fixed std.
    Q is replaced by one that reads c2 with a known error and c3 not at all."""
    import math

    import torch

    from helpers import tiny_config
    from infogan.core.networks import QOutput
    from infogan.evaluation.measures import information_bounds
    from infogan.model import InfoGAN
    from infogan.training.loop import Trainer

    trainer = Trainer(tiny_config(), train_slice)
    model = InfoGAN(trainer.config, trainer.generator, trainer.discriminator, calibrate=False)
    samples, seed, error = 4000, 3, 0.1
    latent = model.sample_latent(samples, generator=torch.Generator().manual_seed(seed))
    noise = torch.randn(samples, generator=torch.Generator().manual_seed(9)) * error
    means = torch.stack([latent.continuous[:, 0] + noise, torch.zeros(samples)], dim=1)
    monkeypatch.setattr(model, "q_output", lambda images: QOutput([torch.zeros(samples, 10)], means, means * 0))
    bounds = information_bounds(model, samples, seed)
    entropy = math.log(2.0)
    expected_c2 = entropy - 0.5 * math.log(2 * math.pi * math.e * float(noise.pow(2).mean()))
    assert math.isclose(bounds["c2"]["mi_lower_bound"], expected_c2, rel_tol=1e-5)
    assert bounds["c2"]["mi_lower_bound"] > 1.5  # a code read to within 0.1 carries much information
    variance = float(latent.continuous[:, 1].pow(2).mean())  # Q says 0 for c3: MSE = E[c3^2] = 1/3
    assert math.isclose(
        bounds["c3"]["mi_lower_bound"], entropy - 0.5 * math.log(2 * math.pi * math.e * variance), rel_tol=1e-5
    )
    assert bounds["c3"]["mi_lower_bound"] < 0  # no information: a Gaussian bound on a uniform code falls below 0
    assert bounds["c2"]["convention"] == "fixed_std" and "loss" in bounds["c2"]
