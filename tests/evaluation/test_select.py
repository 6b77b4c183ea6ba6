"""ModelCentrality (`infogan select`): known answers on models made of linear maps, the
generator-as-ground-truth with categorical and continuous codes, the cost, and the command."""

import json
import shutil

import numpy as np
import pytest

import infogan
from infogan.cli import main
from infogan.config import config_from_dict
from infogan.core.latent import LatentSpec
from infogan.core.networks import build_networks
from infogan.evaluation.disentanglement.generated import GeneratedTruth, code_grid
from infogan.evaluation.selection import (
    Candidate,
    SelectionSizes,
    agreement_ranking,
    centrality,
    select_models,
    selection_cost,
)
from infogan.model import InfoGAN

SPEC = LatentSpec(noise_dim=3, categorical=(3,), continuous=2)
WIDTH = SPEC.input_dim
SMALL = SelectionSizes(votes=60, batch=16, variance_samples=400, grid=8)


def linear(name, read, spec=SPEC, seed=0):
    """A model whose generator maps its input vector [noise, one-hot, continuous] by an invertible
    matrix and whose encoder undoes that map and then applies `read` to the recovered input."""
    mixing = np.random.default_rng(seed).normal(size=(spec.input_dim, spec.input_dim))
    inverse = np.linalg.inv(mixing)

    def generate(latent):
        return spec.to_input(latent).double().numpy() @ mixing.T

    def represent(observations):
        return read(np.asarray(observations) @ inverse.T)

    return Candidate(name, spec, generate, represent)


def exact(x):  # the category (argmax of the one-hot part) and the two continuous codes
    return np.column_stack([x[:, 3:6].argmax(axis=1), x[:, 6:8]])


def relabelled(x):  # the same codes, in another order, rescaled and with the categories renamed
    return np.column_stack([3 * x[:, 7], (x[:, 3:6].argmax(axis=1) + 1) % 3, -x[:, 6]])


SCRAMBLE = np.random.default_rng(5).normal(size=(WIDTH, 3))


def scrambled(x):  # every output mixes every code with the noise
    return x @ SCRAMBLE


def noisy(level):
    rng = np.random.default_rng(7)
    return lambda x: exact(x) + rng.normal(0, level, (len(x), 3))


def test_identical_models_score_the_same_and_a_scrambled_encoder_ranks_last():
    models = [linear("a", exact), linear("b", relabelled), linear("a-again", exact), linear("s", scrambled)]
    result = select_models(models, sizes=SMALL)
    assert [entry["run"] for entry in result["ranking"]][-1] == "s"
    central = dict(zip(result["runs"], result["centrality"]))
    assert central["a"] == central["a-again"] and central["s"] < central["b"] - 0.1
    scores = np.array(result["scores"], dtype=float)
    assert np.isnan(np.diag(scores)).all()
    good = [0, 1, 2]
    assert np.allclose(scores[np.ix_(good, good)][~np.eye(3, dtype=bool)], 1.0)  # codes read back exactly
    assert scores[3, good].max() < 0.8  # the scrambled Q reads nobody's codes
    assert np.allclose(scores[good, 3], 1.0)  # ... but its generator is as good as the others'
    assert result["selected"] in ("a", "b", "a-again") and result["protocol"] == "infogan_cr"
    assert result["options"]["factor_vae_train"] == 60 and result["options"]["factor_vae_prune_std"] == 0.0
    assert result["forward_passes"] == selection_cost(4, SMALL)


def test_a_noisier_encoder_is_less_central():
    # with one generator for all, M[i, j] is the quality q_i of Q_i and a run's centrality is
    # (q_i + the others' mean) / 2: the ranking is that of the encoders' quality
    models = [linear("noisy", noisy(0.8)), linear("exact", exact), linear("noisier", noisy(1.2))]
    result = select_models(models, sizes=SMALL)
    assert [entry["run"] for entry in result["ranking"]] == ["exact", "noisy", "noisier"]
    assert result["scores"][0][1] < 0.9 and result["scores"][2][0] < result["scores"][0][2]


def test_similarity_is_symmetrised_and_centrality_is_the_mean_over_the_others():
    scores = np.array([[np.nan, 1.0, 0.5], [0.8, np.nan, 0.2], [0.4, 0.6, np.nan]])
    similarity, central = centrality(scores)
    assert similarity[0, 1] == similarity[1, 0] == pytest.approx(0.9)
    assert similarity[0, 2] == pytest.approx(0.45) and similarity[1, 2] == pytest.approx(0.4)
    assert central == pytest.approx([(0.9 + 0.45) / 2, (0.9 + 0.4) / 2, (0.45 + 0.4) / 2])


def test_categorical_codes_alone_are_factors_too():
    spec = LatentSpec(noise_dim=2, categorical=(3, 4), continuous=0)

    def read(x):
        return np.column_stack([x[:, 2:5].argmax(axis=1), x[:, 5:9].argmax(axis=1)])

    def read_renamed(x):  # the codes swapped and the values of each renamed
        return np.column_stack([(x[:, 5:9].argmax(axis=1) + 1) % 4, 2 - x[:, 2:5].argmax(axis=1)])

    models = [linear("one", read, spec), linear("two", read_renamed, spec)]
    result = select_models(models, sizes=SelectionSizes(votes=20, batch=8, variance_samples=100))
    assert result["scores"][0][1] == result["scores"][1][0] == 1.0


def test_the_generated_truth_draws_each_factor_tuple_once():
    seen = []

    def generate(latent):
        seen.append(len(latent))
        return SPEC.to_input(latent).numpy()

    data = GeneratedTruth(SPEC, generate, [lambda x: x[:, 3:8], lambda x: x[:, :3]], grid=5)
    assert data.truth.factor_sizes == (3, 5, 5) and data.truth.is_continuous == (False, True, True)
    factors = np.array([[2, 0, 4], [0, 2, 1]])
    rows = data.observe(factors)
    assert np.array_equal(data.observe(factors), rows) and seen == [2]  # looked up, not generated again
    codes = data.representation(0)(rows)
    assert np.array_equal(codes[:, :3], np.eye(3)[[2, 0]])
    assert np.allclose(codes[:, 3:], code_grid("uniform", 5)[factors[:, 1:]])
    assert data.generated == 2 and data.encoded == 4
    assert np.allclose(code_grid("uniform", 4), [-0.75, -0.25, 0.25, 0.75])
    assert np.allclose(code_grid("normal", 3), [-0.9674, 0.0, 0.9674], atol=1e-4)


def test_bad_candidates_are_refused():
    with pytest.raises(infogan.InfoGANError, match="two or more runs"):
        select_models([linear("a", exact)], sizes=SMALL)
    other = LatentSpec(noise_dim=3, categorical=(4,), continuous=2)
    with pytest.raises(infogan.InfoGANError, match="different code layouts.*Cat\\(4\\)"):
        select_models([linear("a", exact), linear("b", exact, other)], sizes=SMALL)
    with pytest.raises(infogan.InfoGANError, match="more than once"):
        select_models([linear("a", exact), linear("a", exact)], sizes=SMALL)
    one = LatentSpec(noise_dim=3, categorical=(3,), continuous=0)
    with pytest.raises(infogan.InfoGANError, match="two or more"):
        select_models([linear("a", exact, one), linear("b", exact, one)], sizes=SMALL)
    with pytest.raises(infogan.InfoGANError, match="votes must be"):
        SelectionSizes(votes=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """Two MNIST runs of one step (seeds 0 and 1) and an exact copy of the first."""
    root = tmp_path_factory.mktemp("select")
    for seed in (0, 1):
        args = ["train", "--preset", "mnist", "--out", str(root / f"seed{seed}"), "--max-steps", "1", "--seed",
                str(seed), "--device", "cpu", "--data-dir", str(data_dir),
                "--set", "logging.tensorboard=false"]  # fmt: skip
        assert main(args) == 0
    shutil.copytree(root / "seed0", root / "copy0")
    return root


QUICK = ["--votes", "6", "--batch", "8", "--variance-samples", "50", "--grid", "4", "--device", "cpu"]


def test_select_ranks_runs_from_the_command_line(runs, tmp_path, capsys):
    out = tmp_path / "selection.json"
    paths = [str(runs / name) for name in ("seed0", "seed1", "copy0")]
    assert main(["select", *paths, *QUICK, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "ModelCentrality of 3 runs" in captured.err and "<- selected" in captured.out
    result = json.loads(out.read_text())
    assert [entry["rank"] for entry in result["ranking"]] == [1, 2, 3] and result["runs"] == paths
    central = dict(zip(result["runs"], result["centrality"]))
    assert central[paths[0]] == central[paths[2]]  # a run and its copy
    assert result["forward_passes"] == {"generator": 3 * 98, "q": 6 * 98, "total": 9 * 98}
    assert result["sizes"] == {"votes": 6, "batch": 8, "variance_samples": 50, "grid": 4, "seed": 0}
    assert result["seconds"] > 0 and result["selected"] == result["ranking"][0]["run"]


def test_select_refuses_bad_input_with_a_message(runs, tmp_path, capsys):
    assert main(["select", str(runs / "seed0"), *QUICK]) == 2
    assert "two or more runs" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["select", str(runs / "seed0"), str(tmp_path / "empty"), *QUICK]) == 2
    assert "holds no checkpoints" in capsys.readouterr().err
    config = config_from_dict({"latent": {"continuous": 3}})
    model = InfoGAN(config, *build_networks(config.model, config.latent), calibrate=False)
    model.export(tmp_path / "three-continuous")
    assert main(["select", str(runs / "seed0"), str(tmp_path / "three-continuous"), *QUICK]) == 2
    err = capsys.readouterr().err
    assert "different code layouts" in err and "Traceback" not in err


# -- agreement: the clusterings of real images compared ----------------------------------------


def test_agreement_ranks_a_clustering_that_agrees_with_the_others_first():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 10, 2000)
    renamed = (truth * 3 + 1) % 10  # the same grouping, values renamed: NMI 1
    blurred = np.where(rng.random(2000) < 0.3, rng.integers(0, 10, 2000), truth)
    random = rng.integers(0, 10, 2000)
    result = agreement_ranking([blurred, truth, random, renamed], ["blurred", "truth", "random", "renamed"])
    assert [entry["run"] for entry in result["ranking"]] == ["truth", "renamed", "blurred", "random"]
    similarity = np.array(result["similarity"], dtype=float)
    assert np.isnan(np.diag(similarity)).all() and np.allclose(similarity, similarity.T, equal_nan=True)
    assert similarity[1, 3] == pytest.approx(1.0) and np.nanmax(similarity[2]) < 0.05
    central = dict(zip(result["runs"], result["centrality"]))
    assert central["truth"] == pytest.approx((1.0 + similarity[1, 0] + similarity[1, 2]) / 3)
    assert result["selected"] == "truth"
    with pytest.raises(infogan.InfoGANError, match="two or more runs"):
        agreement_ranking([truth], ["truth"])
    with pytest.raises(infogan.InfoGANError, match="more than once"):
        agreement_ranking([truth, truth], ["a", "a"])


def test_select_by_agreement_from_the_command_line(runs, tmp_path, capsys):
    out = tmp_path / "agreement.json"
    paths = [str(runs / name) for name in ("seed1", "seed0", "copy0")]
    args = ["select", *paths, "--method", "agreement", "--images", "600", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "agreement of 3 runs on 600 mnist training images" in captured.err and "<- selected" in captured.out
    result = json.loads(out.read_text())
    assert result["code"] == "c1" and result["images"] == 600 and result["runs"] == paths
    assert result["similarity"][1][2] == pytest.approx(1.0)  # a run and its copy assign alike
    assert result["selected"] == paths[1]  # the pair agrees with each other more than with seed 1
    again = tmp_path / "again.json"
    assert main([*args[:-1], str(again)]) == 0  # the images drawn with --seed: the same figures
    assert json.loads(again.read_text())["similarity"] == result["similarity"]


def test_agreement_refuses_runs_without_the_code_or_of_other_data(runs, tmp_path, capsys):
    config = config_from_dict({"latent": {"categorical": [], "continuous": 3}})
    model = InfoGAN(config, *build_networks(config.model, config.latent), calibrate=False)
    model.export(tmp_path / "continuous-only")
    shutil.copytree(tmp_path / "continuous-only", tmp_path / "continuous-only-too")
    args = ["select", "--method", "agreement", "--images", "50", "--device", "cpu"]
    assert main([*args, str(tmp_path / "continuous-only"), str(tmp_path / "continuous-only-too")]) == 2
    err = capsys.readouterr().err
    assert "has no categorical code" in err and "Traceback" not in err
    assert main([*args, str(runs / "seed0"), str(tmp_path / "continuous-only")]) == 2
    assert "different code layouts" in capsys.readouterr().err  # as for ModelCentrality
    assert main([*args, "--code", "c9", str(runs / "seed0"), str(runs / "seed1")]) == 2
    assert "no categorical code 'c9'" in capsys.readouterr().err
    fashion = config_from_dict({"data": {"dataset": "fashion-mnist"}})
    InfoGAN(fashion, *build_networks(fashion.model, fashion.latent), calibrate=False).export(tmp_path / "fashion")
    assert main([*args, str(runs / "seed0"), str(tmp_path / "fashion")]) == 2
    assert "trained on fashion-mnist" in capsys.readouterr().err


# -- issue 30: runs of other data, and sizes beyond memory, refused before any work ------------


def _export(folder, **sections):
    config = config_from_dict(sections)
    InfoGAN(config, *build_networks(config.model, config.latent), calibrate=False).export(folder)
    return str(folder)


@pytest.mark.parametrize("method", ["centrality", "agreement"])
def test_runs_of_other_data_are_refused_by_every_method(tmp_path, capsys, method):
    mnist = _export(tmp_path / "mnist")
    fashion = _export(tmp_path / "fashion", data={"dataset": "fashion-mnist"})
    assert main(["select", mnist, fashion, "--method", method, *QUICK]) == 2
    err = capsys.readouterr().err
    assert f"{fashion} was trained on fashion-mnist and {mnist} on mnist" in err and "Traceback" not in err
    folder = {"dataset": "folder", "path": "photos"}
    small = _export(tmp_path / "small", data=folder, model={"architecture": "conv", "image_size": 32})
    large = _export(tmp_path / "large", data=folder, model={"architecture": "conv", "image_size": 64})
    with pytest.raises(infogan.InfoGANError, match=f"{large} makes 1x64x64 images and {small} 1x32x32"):
        infogan.select([small, large], method, device="cpu")


def test_sizes_beyond_memory_are_refused_with_the_estimate(tmp_path, capsys):
    runs = [_export(tmp_path / "one"), _export(tmp_path / "two")]
    assert main(["select", *runs, *QUICK, "--votes", "100000000"]) == 2
    err = capsys.readouterr().err
    assert "--votes" in err and "GB" in err and "Traceback" not in err
    huge = SelectionSizes(votes=100_000_000)
    with pytest.raises(infogan.InfoGANError, match="GB"):
        select_models([linear("a", exact), linear("b", exact)], sizes=huge)
    with pytest.raises(infogan.InfoGANError, match="grid must be"):
        SelectionSizes(grid=10**8)


def test_an_output_in_a_missing_folder_is_refused_before_any_work(tmp_path, capsys):
    runs = [_export(tmp_path / "one"), _export(tmp_path / "two")]
    assert main(["select", *runs, *QUICK, "--out", str(tmp_path / "missing" / "s.json")]) == 2
    err = capsys.readouterr().err
    assert "create it first" in err and "ModelCentrality of" not in err and not (tmp_path / "missing").exists()
