"""Disentanglement metrics with known answers, on a small synthetic ground truth made here.

Observations of the synthetic truth are the factor indices themselves plus pure-noise columns
(a stand-in for nuisance in an image), so representations are column selections of them.
"""

import json
import math

import numpy as np
import pytest
import torch

import infogan.evaluation.measures
from infogan.config import config_from_dict
from infogan.core.networks import build_networks
from infogan.data import dsprites
from infogan.evaluation.disentanglement import (
    DISENTANGLEMENT_LIB,
    INFOGAN_CR,
    METRICS,
    GroundTruth,
    beta_vae_score,
    dci_from_importance,
    dsprites_truth,
    evaluate_disentanglement,
    factor_vae_score,
    mig_score,
    modularity_from_information,
    mutual_information_gap,
    representation_of,
    resolve_protocol,
    sap_from_matrix,
)
from infogan.model import InfoGAN

SIZES = (3, 4, 5, 6)
K = len(SIZES)
NOISE = 3

SMALL = {
    "disentanglement_lib": DISENTANGLEMENT_LIB.replace(
        factor_vae_train=300, factor_vae_eval=200, factor_vae_batch=32, factor_vae_variance_samples=1000,
        beta_vae_train=300, beta_vae_eval=200, beta_vae_pairs=16, mig_samples=2000, dci_train=400, dci_test=300,
        sap_train=1000, sap_test=500, modularity_train=1000, modularity_test=500,
    ),
    "infogan_cr": INFOGAN_CR.replace(
        factor_vae_train=300, factor_vae_batch=32, factor_vae_variance_samples=1000, beta_vae_train=300,
        beta_vae_pairs=16, mig_samples=2000, dci_train=2000, sap_train=2000, modularity_train=2000,
    ),
}  # fmt: skip


def make_truth(continuous=None, seed=1):
    """Factors of SIZES; an observation is the factor indices followed by NOISE N(0, 1) columns.
    The noise comes from a generator seeded here, so two truths made alike observe alike."""
    rng = np.random.default_rng(seed)

    def observe(factors):
        return np.column_stack([factors.astype(np.float64), rng.normal(size=(len(factors), NOISE))])

    return GroundTruth(tuple(f"f{j}" for j in range(K)), SIZES, observe, continuous=continuous)


def rotate(o):
    """Factors 0 and 1 turned by 45 degrees into two codes that each carry both."""
    return np.column_stack([(o[:, 0] + o[:, 1]) / math.sqrt(2), (o[:, 0] - o[:, 1]) / math.sqrt(2), o[:, 2:]])


PERMUTATION = [3, 5, 0, 6, 1, 4, 2]
SCALE = np.array([3.0, 0.5, -2.0, 10.0, 1.0, -1.0, 0.2])
REPRESENTATIONS = {
    "true": lambda o: o,  # every factor as one code, plus the noise columns
    "factors": lambda o: o[:, :K],
    "random": lambda o: o[:, K:],
    "rotated": rotate,
    "duplicated": lambda o: np.column_stack([o[:, :K], o[:, :K]]),
    "permuted": lambda o: o[:, PERMUTATION],
    "scaled": lambda o: o * SCALE + 5.0,
}

_cache = {}


def result(representation, protocol):
    key = (representation, protocol)
    if key not in _cache:
        _cache[key] = evaluate_disentanglement(REPRESENTATIONS[representation], make_truth(), SMALL[protocol])
    return _cache[key]


@pytest.mark.parametrize("protocol", ["disentanglement_lib", "infogan_cr"])
def test_the_true_factors_score_about_one(protocol):
    summary = result("true", protocol)["summary"]
    assert summary["factor_vae"] == 1.0 and summary["beta_vae"] >= 0.99
    assert summary["mig"] > 0.97  # each factor is one code; only estimation bias is lost
    assert summary["dci_disentanglement"] > 0.97 and summary["dci_completeness"] > 0.97
    assert summary["dci_informativeness"] > 0.97 and summary["explicitness"] > 0.99
    # a linear SVC on one code cannot carve out the middle values of a factor, so SAP of the
    # exact factors is well below 1 with discrete factors; noise codes sit near chance
    assert summary["sap"] > 0.35
    assert result("factors", protocol)["summary"]["modularity"] > 0.99
    # noise codes share a little (biased) information with every factor: not modular
    assert summary["modularity"] < result("factors", protocol)["summary"]["modularity"]
    votes = np.array(result("true", protocol)["metrics"]["factor_vae"]["votes"])
    assert votes[:, :K].sum() == votes.sum() and np.count_nonzero(votes[:, :K] - np.diag(np.diag(votes))) == 0


def test_continuous_factors_under_infogan_cr_use_squared_correlation():
    truth = make_truth(continuous=(False, True, True, True))
    sap = METRICS["sap"](REPRESENTATIONS["true"], truth, np.random.default_rng(0), SMALL["infogan_cr"])
    matrix = np.array(sap["score_matrix"])
    assert np.allclose(matrix[[1, 2, 3], [1, 2, 3]], 1.0) and matrix[K:, 1:].max() < 0.01
    assert sap["score"] > 0.8 > result("true", "infogan_cr")["summary"]["sap"]


@pytest.mark.parametrize("protocol", ["disentanglement_lib", "infogan_cr"])
def test_a_random_representation_scores_chance(protocol):
    summary = result("random", protocol)["summary"]
    chance = 1 / K
    # held-out accuracy sits at chance; InfoGAN-CR's training accuracy of a majority vote is
    # biased upwards by the votes it was fitted to
    assert abs(summary["factor_vae"] - chance) < (0.1 if protocol == "disentanglement_lib" else 0.15)
    assert abs(summary["beta_vae"] - chance) < 0.1
    assert summary["mig"] < 0.01 and summary["sap"] < 0.03
    assert abs(summary["explicitness"] - 0.5) < 0.05
    assert summary["dci_informativeness"] < (0.35 if protocol == "disentanglement_lib" else 0.02)
    if protocol == "disentanglement_lib":
        assert summary["dci_disentanglement"] < 0.05 and summary["dci_completeness"] < 0.05


@pytest.mark.parametrize("protocol", ["disentanglement_lib", "infogan_cr"])
def test_permuting_the_codes_changes_nothing(protocol):
    plain, permuted = result("true", protocol), result("permuted", protocol)
    for name, value in plain["summary"].items():
        assert permuted["summary"][name] == pytest.approx(value, abs=1e-6), name
    importance = np.array(plain["metrics"]["dci"]["importance"])
    assert np.allclose(np.array(permuted["metrics"]["dci"]["importance"]), importance[PERMUTATION], atol=1e-6)


@pytest.mark.parametrize("protocol", ["disentanglement_lib", "infogan_cr"])
def test_rescaling_the_codes_changes_nothing_where_the_definition_is_scale_free(protocol):
    plain, scaled = result("true", protocol)["summary"], result("scaled", protocol)["summary"]
    free = ["factor_vae", "mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "modularity"]
    if protocol == "disentanglement_lib":
        free.append("explicitness")  # codes standardised first
    for name in free:
        assert scaled[name] == pytest.approx(plain[name], abs=1e-6), name
    # BetaVAE's logistic regression, SAP's SVC (C = 0.01) and InfoGAN-CR's explicitness see the
    # codes unstandardised, as in the references, so they do depend on the scale


def test_a_duplicated_code_gives_mig_zero():
    for protocol in SMALL.values():
        mig = mig_score(REPRESENTATIONS["duplicated"], make_truth(), np.random.default_rng(0), protocol)
        assert mig["score"] == 0.0 and mig["per_factor"] == [0.0] * K
    rng = np.random.default_rng(0)
    factors = make_truth().sample_factors(1000, rng)
    one_copied = np.column_stack([factors, factors[:, 2]])
    assert mutual_information_gap(one_copied, factors)["per_factor"][2] == 0.0


@pytest.mark.parametrize("protocol", ["disentanglement_lib", "infogan_cr"])
def test_mixing_two_factors_scores_lower(protocol):
    plain, mixed = result("true", protocol)["summary"], result("rotated", protocol)["summary"]
    for name in ("factor_vae", "beta_vae", "mig", "dci_disentanglement", "dci_completeness", "sap", "modularity"):
        assert mixed[name] < plain[name] - 0.01, name
    assert 0.4 < mixed["mig"] < 0.6  # the two mixed factors lose their whole gap, the others keep it


def test_both_protocols_run_and_name_themselves():
    for name in ("disentanglement_lib", "infogan_cr"):
        out = result("true", name)
        assert out["protocol"] == name and out["options"]["name"] == name
        assert not out["at_reference_sizes"] and out["options"]["factor_vae_train"] == SMALL[name].factor_vae_train
        assert set(out["metrics"]) == set(METRICS) and out["codes"] == K + NOISE
        assert all(metric["protocol"] == name for metric in out["metrics"].values())
        assert set(out["seconds"]) == set(METRICS)
        json.dumps(out, allow_nan=False)
    held_out = result("true", "disentanglement_lib")["metrics"]
    training = result("true", "infogan_cr")["metrics"]
    assert held_out["factor_vae"]["eval_accuracy"] is not None and training["factor_vae"]["eval_accuracy"] is None
    assert held_out["dci"]["model"] == "gradient_boosting" and training["dci"]["model"] == "lasso"
    assert held_out["dci"]["observations"] == 700 and training["dci"]["observations"] == 2000
    assert resolve_protocol("infogan_cr") is INFOGAN_CR and resolve_protocol(INFOGAN_CR) is INFOGAN_CR
    assert INFOGAN_CR.factor_vae_variance_samples == 73728 and DISENTANGLEMENT_LIB.factor_vae_prune_std == 0.05
    with pytest.raises(ValueError, match="unknown protocol"):
        resolve_protocol("nope")
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_disentanglement(REPRESENTATIONS["true"], make_truth(), SMALL["infogan_cr"], metrics=["fid"])
    with pytest.raises(ValueError, match="factor_vae_batch"):
        DISENTANGLEMENT_LIB.replace(factor_vae_batch=1)
    with pytest.raises(ValueError, match="dci_model"):
        DISENTANGLEMENT_LIB.replace(dci_model="forest")


def test_metrics_seeded_alike_represent_their_common_draws_once():
    out = result("true", "infogan_cr")
    cr = SMALL["infogan_cr"]
    groups = cr.factor_vae_train * cr.factor_vae_batch + cr.beta_vae_train * 2 * cr.beta_vae_pairs
    # MIG, DCI, SAP and modularity each draw 2,000 observations: one set, represented once
    assert out["represented"] == cr.factor_vae_variance_samples + groups + 2000
    assert sum(m["observations"] for m in out["metrics"].values()) == out["represented"] + 3 * 2000
    again = factor_vae_score(REPRESENTATIONS["true"], make_truth(), np.random.default_rng(0), cr)
    assert again["votes"] == out["metrics"]["factor_vae"]["votes"]


def test_pruning_drops_a_quiet_code_only_under_disentanglement_lib():
    def quiet(o):
        return np.column_stack([o[:, 0], o[:, 1] * 1e-3, o[:, 2:K]])  # factor 1 in a code of std < 0.05

    scores = {}
    for name, protocol in SMALL.items():
        out = factor_vae_score(quiet, make_truth(), np.random.default_rng(0), protocol)
        scores[name] = out["score"]
        assert (1 in out["active_codes"]) == (name == "infogan_cr")
    # without code 1, factor 1's votes go to the other factors' codes and are all wrong
    assert scores["infogan_cr"] == 1.0 and scores["disentanglement_lib"] < 0.8


def test_chunking_the_observations_changes_nothing():
    protocol = SMALL["disentanglement_lib"]
    metrics = ["factor_vae", "beta_vae", "sap"]
    a = evaluate_disentanglement(REPRESENTATIONS["rotated"], make_truth(), protocol, seed=3, metrics=metrics)
    b = evaluate_disentanglement(REPRESENTATIONS["rotated"], make_truth(), protocol.replace(chunk=7), 3, metrics)
    assert a["summary"] == b["summary"] and a["metrics"]["factor_vae"]["votes"] == b["metrics"]["factor_vae"]["votes"]


def test_beta_vae_with_points_of_pairs_and_of_one_value():
    # one-value points (InfoGAN-CR) and pairs with their own values (disentanglement_lib) both
    # give a zero difference in the fixed factor's code, so the exact factors classify perfectly
    for protocol in (SMALL["infogan_cr"], SMALL["disentanglement_lib"].replace(beta_vae_one_value=True)):
        out = beta_vae_score(REPRESENTATIONS["factors"], make_truth(), np.random.default_rng(1), protocol)
        assert out["score"] == 1.0


def test_todays_logistic_regression_defaults_can_be_chosen():
    protocol = SMALL["disentanglement_lib"].replace(logistic="lbfgs_multinomial")
    metrics = ["beta_vae", "modularity_explicitness"]
    today = evaluate_disentanglement(REPRESENTATIONS["true"], make_truth(), protocol, metrics=metrics)["summary"]
    assert today["beta_vae"] >= 0.99 and today["explicitness"] > 0.99
    random = evaluate_disentanglement(REPRESENTATIONS["random"], make_truth(), protocol, metrics=metrics)["summary"]
    assert abs(random["beta_vae"] - 1 / K) < 0.1 and abs(random["explicitness"] - 0.5) < 0.05
    with pytest.raises(ValueError, match="logistic"):
        protocol.replace(logistic="saga")


def test_scores_from_known_matrices():
    assert dci_from_importance(np.eye(3))["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    uniform = dci_from_importance(np.ones((3, 3)))
    assert uniform["disentanglement"] == pytest.approx(0.0, abs=1e-9) and uniform["completeness"] == pytest.approx(0)
    # one code explains both factors: no disentanglement, full completeness
    one_code = dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert one_code["disentanglement"] == pytest.approx(0, abs=1e-6) and one_code["completeness"] > 0.99
    # weighted and plain completeness differ when factors carry different total importance
    skewed = np.array([[2.0, 0.5], [0.0, 0.5]])
    assert dci_from_importance(skewed, True)["completeness"] > dci_from_importance(skewed, False)["completeness"]
    assert sap_from_matrix(np.array([[0.9, 0.1], [0.2, 0.7], [0.1, 0.1]])) == pytest.approx((0.7 + 0.6) / 2)
    modularity, per_code = modularity_from_information(np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    assert per_code == [1.0, 0.0, 0.0] and modularity == pytest.approx(1 / 3)


def test_ground_truth_checks_and_values():
    truth = GroundTruth(("a", "b"), (2, 3), lambda f: f, grid=(np.array([0.0, 1.0]), np.array([0.5, 0.7, 0.9])))
    factors = truth.sample_factors(50, np.random.default_rng(0))
    assert factors.shape == (50, 2) and factors.dtype == np.int64 and set(factors[:, 1]) == {0, 1, 2}
    assert np.allclose(truth.values(np.array([[1, 2]])), [[1.0, 0.9]]) and truth.is_continuous == (False, False)
    with pytest.raises(ValueError, match="two or more factors"):
        GroundTruth(("a",), (3,), lambda f: f)
    with pytest.raises(ValueError, match="two or more values"):
        GroundTruth(("a", "b"), (3, 1), lambda f: f)
    with pytest.raises(ValueError, match="one value per index"):
        GroundTruth(("a", "b"), (2, 3), lambda f: f, grid=(np.zeros(2), np.zeros(2)))
    with pytest.raises(ValueError, match=r"expected \(n, n_codes\)"):
        mig_score(lambda o: o[:, 0], make_truth(), np.random.default_rng(0), SMALL["infogan_cr"])


def test_mig_lives_in_one_place():
    assert infogan.evaluation.measures.mutual_information_gap is mutual_information_gap


class _IndexedRows:
    """A stand-in for the 377 MB packed dSprites array: row i holds i in its first 32 bits."""

    def __getitem__(self, indices):
        indices = np.asarray(indices, dtype=np.uint32)
        rows = np.zeros((len(indices), 512), dtype=np.uint8)
        rows[:, :4] = indices[:, None].view(np.uint8).reshape(-1, 4)[:, ::-1]
        return rows


def test_dsprites_truth_reads_the_image_of_each_factor_tuple():
    truth = dsprites_truth(_IndexedRows())
    assert truth.factor_sizes == dsprites.FACTOR_SIZES and truth.is_continuous == (False, True, True, True, True)
    factors = truth.sample_factors(20, np.random.default_rng(0))
    images = truth.observations(factors)
    assert images.shape == (20, 1, 64, 64) and images.dtype == torch.uint8
    bits = (images[:, 0, 0, :32].numpy() // 255).astype(np.uint64)
    read = (bits << np.arange(31, -1, -1, dtype=np.uint64)).sum(axis=1)
    indices = np.ravel_multi_index(tuple(factors.T), dsprites.FACTOR_SIZES)
    assert np.array_equal(read, indices)
    assert np.allclose(truth.values(factors), dsprites.factor_values(indices))


def test_representation_of_a_model_reads_q_codes_in_order():
    config = config_from_dict({"latent": {"noise_dim": 4, "categorical": [3], "continuous": 2}})
    torch.manual_seed(0)
    generator, discriminator = build_networks(config.model, config.latent)
    model = InfoGAN(config, generator, discriminator, calibrate=False)

    def observe(factors):  # a 6x6 square at one of 4 x 4 positions in a 28x28 image
        images = torch.zeros(len(factors), 1, 28, 28, dtype=torch.uint8)
        for i, (x, y) in enumerate(factors):
            images[i, 0, 4 + 5 * y : 10 + 5 * y, 4 + 5 * x : 10 + 5 * x] = 255
        return images

    truth = GroundTruth(("x", "y"), (4, 4), observe)
    represent = representation_of(model)
    images = observe(np.array([[0, 0], [3, 1], [2, 2]]))
    codes = represent(images)
    expected = model.encode(images)
    assert codes.shape == (3, 3) and codes.dtype == np.float64
    for j, name in enumerate(model.spec.code_names):
        assert np.allclose(codes[:, j], expected[name].double().numpy())
    tiny = SMALL["disentanglement_lib"].replace(factor_vae_train=20, factor_vae_eval=10, factor_vae_batch=8,
                                                factor_vae_variance_samples=100, factor_vae_prune_std=0.0,
                                                mig_samples=100)  # fmt: skip
    out = evaluate_disentanglement(represent, truth, tiny, metrics=["factor_vae", "mig"])
    assert 0.0 <= out["summary"]["factor_vae"] <= 1.0 and 0.0 <= out["summary"]["mig"] <= 1.0 and out["codes"] == 3
