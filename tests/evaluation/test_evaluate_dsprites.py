"""`infogan evaluate` on dSprites: the cached representation (each grid point encoded once, the
plain results number for number), the code-to-factor matching, and the command end to end."""

import json

import numpy as np
import pytest

import infogan
from infogan.cli import main
from infogan.config import resolve_config
from infogan.core.networks import build_networks
from infogan.data import dsprites
from infogan.evaluation.disentanglement import DISENTANGLEMENT_LIB, INFOGAN_CR, GroundTruth, evaluate_disentanglement
from infogan.evaluation.disentanglement.cached import CachedRepresentation
from infogan.evaluation.measures import code_factor_matching
from infogan.evaluation.report import choose_protocols
from infogan.model import InfoGAN

SIZES = (3, 4, 5, 6)

SMALL = {
    "disentanglement_lib": DISENTANGLEMENT_LIB.replace(
        factor_vae_train=200, factor_vae_eval=100, factor_vae_batch=16, factor_vae_variance_samples=500,
        beta_vae_train=200, beta_vae_eval=100, beta_vae_pairs=8, mig_samples=1000, dci_train=300, dci_test=200,
        sap_train=500, sap_test=300, modularity_train=500, modularity_test=300, chunk=700,
    ),
    "infogan_cr": INFOGAN_CR.replace(
        factor_vae_train=200, factor_vae_batch=16, factor_vae_variance_samples=500, beta_vae_train=200,
        beta_vae_pairs=8, mig_samples=1000, dci_train=1000, sap_train=1000, modularity_train=1000, chunk=700,
    ),
}  # fmt: skip


def grid_truth():
    """A made-up grid: each observation is its factor indices plus two columns that are a fixed
    function of the grid point (a nuisance, but the same every time the point is drawn)."""

    def observe(factors):
        index = np.ravel_multi_index(tuple(factors.T), SIZES).astype(np.float64)
        return np.column_stack([factors.astype(np.float64), np.sin(index * 12.9898), np.cos(index * 78.233)])

    return GroundTruth(("a", "b", "c", "d"), SIZES, observe, continuous=(False, True, True, True))


class Counting:
    """A representation (factors 0 and 1 mixed, the rest as they are) that records what it sees."""

    def __init__(self):
        self.seen = []

    def __call__(self, observations):
        self.seen.append(len(observations))
        o = np.asarray(observations)
        return np.column_stack([o[:, 0] + 0.5 * o[:, 1], o[:, 1], o[:, 2:]])


def _without_times(result):
    return {key: value for key, value in result.items() if key != "seconds"}


@pytest.mark.parametrize("protocol", ["disentanglement_lib", "infogan_cr"])
def test_the_cached_representation_gives_the_plain_results(protocol):
    truth = grid_truth()
    plain = evaluate_disentanglement(Counting(), truth, SMALL[protocol])
    counting = Counting()
    cached = CachedRepresentation(counting, truth, chunk=50)
    fast = evaluate_disentanglement(cached, cached.truth, SMALL[protocol])
    assert _without_times(fast) == _without_times(plain)
    assert fast["represented"] > 10 * np.prod(SIZES)  # drawn many times over ...
    assert cached.encoded == sum(counting.seen) <= np.prod(SIZES)  # ... each grid point encoded once
    assert max(counting.seen) <= 50


def test_the_cache_encodes_only_what_is_missing_in_order():
    counting = Counting()
    cached = CachedRepresentation(counting, grid_truth(), chunk=1000)
    first = cached(np.array([7, 3, 7, 100]))
    assert counting.seen == [3] and cached.encoded == 3
    again = cached(np.array([100, 3, 5]))
    assert counting.seen == [3, 1] and cached.encoded == 4
    assert np.array_equal(again[:2], first[[3, 1]])
    factors = np.array([[0, 0, 1, 2], [2, 3, 4, 5]])
    assert np.array_equal(cached.codes_of(factors), Counting()(grid_truth().observations(factors)))
    with pytest.raises(ValueError, match="grid indices"):
        cached(np.array([np.prod(SIZES)]))
    with pytest.raises(ValueError, match="at most"):
        CachedRepresentation(counting, GroundTruth(("a", "b"), (10**5, 10**4), lambda f: f))


def test_matching_names_the_factor_each_code_carries():
    truth = grid_truth()

    def represent(o):  # code 0 carries factor 2, code 1 factor 0, code 2 is the nuisance, code 3 factor 3
        return np.column_stack([o[:, 2], o[:, 0], o[:, 4], o[:, 3]])

    matching = code_factor_matching(represent, truth, SMALL["disentanglement_lib"], code_names=["c1", "c2", "c3", "c4"])
    assert {code: m["factor"] for code, m in matching["codes"].items() if code != "c3"} == {
        "c1": "c",
        "c2": "a",
        "c4": "d",
    }
    assert matching["codes"]["c1"]["normalized_information"] > 0.95
    assert matching["factors"]["a"]["code"] == "c2" and matching["factors"]["d"]["code"] == "c4"
    assert matching["protocol"] == "disentanglement_lib" and matching["samples"] == 1000
    assert np.array(matching["normalized_information"]).shape == (4, 4)


class _SpritesByShapeScaleAndPosition:
    """A stand-in for the 377 MB packed dSprites array: the real sprites of every shape and scale
    at orientation 0, at every position (the orientation factor draws nothing)."""

    def __init__(self):
        self.blocks = np.stack(
            [
                dsprites._placements(dsprites.render_sprite(shape, scale, 0.0))
                for shape in dsprites.SHAPES
                for scale in dsprites.SCALES
            ]
        )

    def __len__(self):
        return dsprites.COUNT

    def __getitem__(self, indices):
        shape, scale, _, x, y = np.unravel_index(np.asarray(indices), dsprites.FACTOR_SIZES)
        return self.blocks[shape * len(dsprites.SCALES) + scale, x * 32 + y]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A dSprites run of two steps, trained (and evaluated) on the stand-in images."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        patch.setattr(dsprites, "load_packed", lambda cache_dir: SPRITES)
        out = tmp_path_factory.mktemp("dsprites") / "run"
        args = ["train", "--preset", "dsprites", "--out", str(out), "--max-steps", "2", "--device", "cpu", "--set",
                "optim.batch_size=32", "--set", "logging.tensorboard=false", "--progress", "lines"]  # fmt: skip
        assert main(args) == 0
        yield out


SPRITES = _SpritesByShapeScaleAndPosition()

QUICK = [
    f"--protocol-set={key}={value}"
    for key, value in dict(
        factor_vae_train=30, factor_vae_eval=20, factor_vae_batch=8, factor_vae_variance_samples=200, mig_samples=400,
        beta_vae_train=30, beta_vae_eval=20, beta_vae_pairs=4, dci_train=200, dci_test=100, sap_train=200,
        sap_test=100, modularity_train=200, modularity_test=100,
    ).items()
]  # fmt: skip
EVALUATE = ["--samples", "50", "--device", "cpu", "--quality-samples", "0"]
FAST = "factor_vae,beta_vae,mig,sap"  # DCI's boosted trees fit 11,300 trees on dSprites at any size


def test_evaluate_reports_both_protocols_on_dsprites(run, tmp_path, capsys):
    out = tmp_path / "evaluation.json"
    assert main(["evaluate", str(run), "--limit", "300", "--out", str(out), "--metrics", FAST, *EVALUATE, *QUICK]) == 0
    printed = capsys.readouterr().out
    assert "disentanglement_lib*" in printed and "infogan_cr*" in printed and "FactorVAE" in printed
    assert "at other sizes" in printed and "MIG " in printed and "codes matched to factors" in printed
    report = json.loads(out.read_text())
    assert report["labels"] == "shape"
    result = report["disentanglement"]
    model = infogan.load(run)
    assert result["code_names"] == model.spec.code_names and result["factor_names"] == list(dsprites.FACTOR_NAMES)
    for name in ("disentanglement_lib", "infogan_cr"):
        entry = result["protocols"][name]
        assert entry["protocol"] == name and not entry["at_reference_sizes"]
        assert entry["options"]["factor_vae_train"] == 30 and entry["options"]["name"] == name
        assert set(entry["summary"]) == set(entry["seconds"]) == set(FAST.split(","))
        assert 0 < entry["encoded"] <= entry["represented"]
    assert result["encoded"] == sum(result["protocols"][n]["encoded"] for n in result["protocols"])
    assert set(result["matching"]["codes"]) == set(model.spec.code_names)
    assert np.array(result["mutual_information"]).shape == (5, len(model.spec.code_names))
    # the clustering images' codes come from the same cache, and they are Q's codes
    saved = np.load(out.with_name("factors.npz"))
    assert saved["codes"].shape == (300, len(model.spec.code_names))
    indices = np.ravel_multi_index(tuple(saved["factors"][:20].T), dsprites.FACTOR_SIZES)
    expected = model.encode(dsprites.unpack(SPRITES[indices]))
    for j, name in enumerate(model.spec.code_names):
        assert np.allclose(saved["codes"][:20, j], expected[name].float().numpy(), atol=1e-5)


def test_evaluate_with_one_protocol_and_some_metrics(run, tmp_path):
    out = tmp_path / "evaluation.json"
    args = ["evaluate", str(run), "--limit", "100", "--out", str(out), "--protocol", "infogan_cr",
            "--metrics", "factor_vae,mig", *EVALUATE, *QUICK]  # fmt: skip
    assert main(args) == 0
    result = json.loads(out.read_text())["disentanglement"]
    assert list(result["protocols"]) == ["infogan_cr"]
    assert set(result["protocols"]["infogan_cr"]["summary"]) == {"factor_vae", "mig"}
    assert result["matching"]["protocol"] == "infogan_cr"
    assert main(["evaluate", str(run), "--limit", "100", "--out", str(out), "--protocol", "none", *EVALUATE]) == 0
    legacy = json.loads(out.read_text())["disentanglement"]
    assert "protocols" not in legacy and len(legacy["per_factor"]) == 5


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--protocol-set", "factor_vae_trian=5"], "not an option"),
        (["--protocol-set", "factor_vae_train=0"], "factor_vae_train must be"),
    ],
)
def test_bad_protocol_options_are_reported(run, capsys, extra, message):
    assert main(["evaluate", str(run), "--device", "cpu", *extra]) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_metric_is_refused(run, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["evaluate", str(run), "--metrics", "factor_vae,mgi"])
    assert exit.value.code == 2 and "'mgi' is not one of" in capsys.readouterr().err


def test_disentanglement_flags_on_a_data_set_without_factors_are_refused():
    config = resolve_config("mnist")
    model = InfoGAN(config, *build_networks(config.model, config.latent), calibrate=False)
    with pytest.raises(infogan.InfoGANError, match="only dSprites"):
        choose_protocols(model, "infogan_cr", None, ())
    assert choose_protocols(model, None, None, ()) == []
    with pytest.raises(infogan.InfoGANError, match="no ground-truth factors"):
        infogan.evaluate_disentanglement_of(model, "infogan_cr")
