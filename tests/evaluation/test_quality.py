"""The sample-quality score: Frechet distance known answers, the feature classifier on a slice of
real MNIST, its cache (round trip, damaged and foreign files), and the CLI end to end."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from infogan import InfoGANError, frechet_distance, load_feature_classifier
from infogan.cli import main
from infogan.evaluation.quality import MissingClassifierError, classifier_path, frechet_from_moments, save_classifier
from infogan.evaluation.quality.store import METADATA_KEY

TRAIN_SLICE = 2000


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in this process; one thread (on a busy 2-core machine two are far slower)."""
    if len(argv) > 1 and argv[0] in ("evaluate", "train") or argv[:2] == ["quality-net", "train"]:
        argv = [*argv, "--threads", "1"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cache(tmp_path_factory, data_dir):
    """A user cache holding an MNIST feature classifier trained by the CLI on 2,000 images, 1 epoch."""
    patch, threads = pytest.MonkeyPatch(), torch.get_num_threads()
    home = tmp_path_factory.mktemp("cache")
    patch.setenv("XDG_CACHE_HOME", str(home))
    argv = ["quality-net", "train", "--dataset", "mnist", "--limit", str(TRAIN_SLICE), "--epochs", "1"]
    status, out, err = _cli([*argv, "--batch-size", "32", "--data-dir", str(data_dir), "--device", "cpu"])
    assert status == 0, err
    yield {"home": home, "out": out, "path": classifier_path("mnist")}
    patch.undo()
    torch.set_num_threads(threads)  # the CLI's --threads 1 set the process-wide count


@pytest.fixture(scope="module")
def classifier(cache):
    return load_feature_classifier("mnist")


# -- Frechet distance: known answers ----------------------------------------------------------


def _closed_form(mean_a, cov_a, mean_b, cov_b) -> float:
    """tr(A + B - 2 (A^1/2 B A^1/2)^1/2) + |mu_a - mu_b|^2, through symmetric eigendecompositions."""
    values, vectors = np.linalg.eigh(cov_a)
    root_a = vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    diff = np.asarray(mean_a) - np.asarray(mean_b)
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(np.clip(middle, 0, None)).sum())


def _random_covariance(rng, dim):
    m = rng.normal(size=(dim, dim))
    return m @ m.T / dim + 0.1 * np.eye(dim)


def test_a_gaussian_is_at_distance_zero_from_itself():
    rng = np.random.default_rng(0)
    features = rng.multivariate_normal(np.arange(16.0), _random_covariance(rng, 16), size=3000)
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)
    cov = _random_covariance(rng, 64)
    assert frechet_from_moments(np.ones(64), cov, np.ones(64), cov) == pytest.approx(0.0, abs=1e-8)


def test_distance_between_gaussians_matches_the_closed_form():
    # diagonal covariances: |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 3.0**2 + 4.0**2 + (1 + 1 + 0)
    assert frechet_from_moments(np.zeros(3), np.diag(a), np.array([3.0, 4.0, 0.0]), np.diag(b)) == pytest.approx(
        expected
    )
    # one dimension: (m_a - m_b)^2 + (s_a - s_b)^2
    assert frechet_from_moments(np.array([1.0]), [[4.0]], np.array([-1.0]), [[0.25]]) == pytest.approx(4 + 1.5**2)
    # full, non-commuting covariances
    rng = np.random.default_rng(1)
    for dim in (2, 10, 128):
        ma, mb = rng.normal(size=dim), rng.normal(size=dim)
        ca, cb = _random_covariance(rng, dim), _random_covariance(rng, dim)
        assert frechet_from_moments(ma, ca, mb, cb) == pytest.approx(_closed_form(ma, ca, mb, cb), rel=1e-7)


def test_distance_of_samples_approaches_the_distance_of_their_gaussians():
    rng = np.random.default_rng(2)
    ma, mb = np.array([0.0, 1.0, -1.0]), np.array([0.5, 0.0, 0.0])
    ca, cb = _random_covariance(rng, 3), _random_covariance(rng, 3)
    fa, fb = rng.multivariate_normal(ma, ca, size=200000), rng.multivariate_normal(mb, cb, size=200000)
    assert frechet_distance(fa, fb) == pytest.approx(_closed_form(ma, ca, mb, cb), rel=0.02)


def test_singular_covariances_give_finite_distances():
    rng = np.random.default_rng(3)
    blank = np.zeros((100, 8))
    one_axis = np.zeros((100, 8))
    one_axis[:, 0] = rng.normal(size=100)
    assert frechet_distance(blank, blank) == 0.0
    assert frechet_distance(blank, one_axis) == pytest.approx(one_axis[:, 0].mean() ** 2 + one_axis[:, 0].var(ddof=1))


def test_bad_inputs_are_refused():
    with pytest.raises(InfoGANError, match="N >= 2"):
        frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(InfoGANError, match="different widths"):
        frechet_distance(np.zeros((5, 4)), np.zeros((5, 3)))
    with pytest.raises(InfoGANError, match="NaN"):
        frechet_distance(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(InfoGANError, match="imaginary part"):  # not a covariance: a negative variance
        frechet_from_moments(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


# -- the feature classifier on real MNIST ------------------------------------------------------


def test_classifier_trained_on_a_slice_is_far_above_chance(cache, classifier):
    meta = classifier.metadata
    assert meta["test_accuracy"] > 0.8  # chance is 0.1; 2,000 images and 1 epoch give about 0.9
    assert meta["train_images"] == TRAIN_SLICE and meta["epochs"] == 1 and meta["test_images"] == 10000
    assert meta["feature_dim"] == 128 and meta["image_shape"] == [1, 28, 28]
    assert f"test accuracy {meta['test_accuracy']:.4f}" in cache["out"] and str(cache["path"]) in cache["out"]


def test_real_images_score_far_below_noise_and_blank_images(classifier, mnist_train, mnist_test):
    test = classifier.embed(mnist_test[0][:1000])
    train = classifier.embed(mnist_train[0][10000:11000])  # not among the classifier's training images
    generator = torch.Generator().manual_seed(0)
    noise = classifier.embed(torch.randint(0, 256, (1000, 1, 28, 28), dtype=torch.uint8, generator=generator))
    blank = classifier.embed(torch.zeros(1000, 1, 28, 28, dtype=torch.uint8))
    real = frechet_distance(test, train)
    assert real < frechet_distance(test, noise) / 10
    assert real < frechet_distance(test, blank) / 10


# -- the cache ----------------------------------------------------------------------------------


def test_cache_round_trip_keeps_weights_and_facts(classifier, tmp_path, mnist_test):
    path = save_classifier(classifier, {k: v for k, v in classifier.metadata.items() if k != "path"}, tmp_path / "c.st")
    again = load_feature_classifier("mnist", path)
    for name, tensor in classifier.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name
    images = mnist_test[0][:64]
    assert np.array_equal(classifier.embed(images), again.embed(images))
    assert again.metadata["test_accuracy"] == classifier.metadata["test_accuracy"]
    assert not list(tmp_path.glob(".*.part"))  # the atomic write left no temporary file


def _damage(source, target, offset_from_end: int) -> None:
    payload = bytearray(source.read_bytes())
    payload[-offset_from_end] ^= 0xFF
    target.write_bytes(bytes(payload))


def test_damaged_and_foreign_files_give_clear_errors(cache, tmp_path):
    path = cache["path"]
    flipped = tmp_path / "flipped.safetensors"
    _damage(path, flipped, 100)  # a byte of the weights
    with pytest.raises(InfoGANError, match="damaged: its weights do not match"):
        load_feature_classifier("mnist", flipped)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(InfoGANError, match="cannot read .* damaged or not a safetensors file"):
        load_feature_classifier("mnist", truncated)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(InfoGANError, match="damaged or not a safetensors file"):
        load_feature_classifier("mnist", junk)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(other), metadata={"something": "else"})
    with pytest.raises(InfoGANError, match="not an infogan feature classifier"):
        load_feature_classifier("mnist", other)
    with pytest.raises(InfoGANError, match="holds the feature classifier of 'mnist', not 'fashion-mnist'"):
        load_feature_classifier("fashion-mnist", path)
    with pytest.raises(MissingClassifierError, match="infogan quality-net train --dataset fashion-mnist"):
        load_feature_classifier("fashion-mnist")


def test_a_classifier_of_another_architecture_version_is_refused(classifier, tmp_path):
    meta = {k: v for k, v in classifier.metadata.items() if k != "path"}
    path = save_classifier(classifier, meta, tmp_path / "c.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        stored = json.loads(handle.metadata()[METADATA_KEY])
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    stored["architecture_hash"] = "0" * 16
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(stored)})
    with pytest.raises(InfoGANError, match="another version of the feature classifier"):
        load_feature_classifier("mnist", path)


# -- the CLI ------------------------------------------------------------------------------------

TINY_RUN = ["--max-steps", "2", "--set", "optim.batch_size=16", "--set", "logging.checkpoint_every=2"]
TINY_RUN += ["--set", "logging.image_every=2", "--set", "logging.log_every=2", "--set", "logging.tensorboard=false"]


def test_cli_trains_refuses_to_replace_shows_and_evaluate_reports_the_score(cache, data_dir, tmp_path, monkeypatch):
    status, _, err = _cli(["quality-net", "train", "--dataset", "mnist", "--data-dir", str(data_dir)])
    assert status == 2 and "holds a feature classifier already" in err and "--force" in err
    status, out, _ = _cli(["quality-net", "show", "--dataset", "mnist"])
    assert status == 0 and f"on {TRAIN_SLICE} training images" in out

    run = tmp_path / "run"
    assert _cli(["train", "--out", str(run), "--data-dir", str(data_dir), "--device", "cpu", *TINY_RUN])[0] == 0
    evaluate = ["evaluate", str(run), "--samples", "100", "--limit", "200", "--data-dir", str(data_dir)]
    status, out, err = _cli([*evaluate, "--quality-samples", "300", "--device", "cpu"])
    assert status == 0, err
    quality = json.loads((run / "evaluation.json").read_text())["quality"]
    assert quality["samples"] == 300 and quality["reference_images"] == 10000
    assert (
        quality["score"] > 0
        and quality["classifier_accuracy"] == load_feature_classifier("mnist").metadata["test_accuracy"]
    )
    assert "300 generated" in quality["protocol"] and f"quality score {quality['score']:.3f}" in out

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    status, out, _ = _cli([*evaluate, "--device", "cpu"])
    assert status == 0 and "infogan quality-net train --dataset mnist" in out
    assert json.loads((run / "evaluation.json").read_text())["quality"]["score"] is None


def test_cli_train_on_an_unlabelled_data_set_is_refused(cache):
    with pytest.raises(SystemExit):  # argparse: dsprites is not among the choices
        _cli(["quality-net", "train", "--dataset", "dsprites"])


def test_copied_cache_file_of_another_data_set_is_refused_by_name(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    target = classifier_path("fashion-mnist")
    target.parent.mkdir(parents=True)
    shutil.copy(cache["path"], target)
    status, _, err = _cli(["quality-net", "show", "--dataset", "fashion-mnist"])
    assert status == 2 and "not 'fashion-mnist'" in err
