import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from infogan.config import Config, config_from_dict, preset_names, resolve_config, save_config
from infogan.errors import InfoGANError


def test_defaults_follow_the_authors_mnist_setting():
    config = Config()
    assert config.latent.noise_dim == 62 and config.latent.categorical == (10,) and config.latent.continuous == 2
    assert (config.optim.lr_d, config.optim.lr_g, config.optim.beta1) == (2e-4, 1e-3, 0.5)
    assert (config.optim.batch_size, config.optim.steps) == (128, 5000)
    assert config.loss.adversarial == "nonsaturating"
    assert config.loss.continuous_info == "fixed_std"
    assert config.loss.info_update == "both"
    assert (config.loss.lambda_categorical, config.loss.lambda_continuous) == (1.0, 1.0)


def test_mnist_preset_equals_defaults():
    assert resolve_config("mnist") == Config()
    assert "fashion-mnist" in preset_names()


def test_mnist_fast_is_the_paper_setting_plus_the_augmented_term_and_more_steps():
    fast = resolve_config("mnist-fast")
    loss = fast.loss
    assert (loss.lambda_augmented, loss.augment_stroke, loss.augment_elastic) == (2.0, 0.5, 2.0)
    assert fast.optim.steps == 8000
    paper = {"loss.lambda_augmented": 0, "loss.augment_stroke": 0, "loss.augment_elastic": 0, "optim.steps": 5000}
    undone = fast.replace(**paper)
    assert undone == Config()  # nothing else differs from the paper's setting


def test_mnist_laptop_is_mnist_fast_on_small_networks_at_batch_64_with_higher_rates_and_fewer_steps():
    laptop = resolve_config("mnist-laptop")
    model, optim = laptop.model, laptop.optim
    assert (model.architecture, model.width, model.hidden) == ("mnist_small", 32, 256)
    assert (optim.batch_size, optim.lr_d, optim.lr_g, optim.steps) == (64, 1e-3, 2e-3, 5000)
    paper_networks = {"model.architecture": "mnist", "model.width": 64, "model.hidden": 0}
    fast_optim = {"optim.batch_size": 128, "optim.lr_d": 2e-4, "optim.lr_g": 1e-3, "optim.steps": 8000}
    undone = laptop.replace(**paper_networks, **fast_optim)
    assert undone == resolve_config("mnist-fast")  # nothing else differs, so it is float32 like every preset


def test_fashion_mnist_cluster_is_the_fashion_preset_plus_the_augmented_term_and_fewer_steps():
    cluster = resolve_config("fashion-mnist-cluster")
    loss = cluster.loss
    assert (loss.lambda_augmented, loss.augment_gamma, loss.augment_elastic, loss.augment_stroke) == (
        4.0,
        0.5,
        1.5,
        0.0,
    )
    assert (loss.augment_degrees, loss.augment_shear, loss.augment_scale, loss.augment_shift) == (8.0, 0.1, 0.1, 2.0)
    keys = ("lambda_augmented", "augment_degrees", "augment_shear", "augment_scale", "augment_shift", "augment_elastic")
    undo = {f"loss.{key}": getattr(Config().loss, key) for key in (*keys, "augment_gamma")}
    assert cluster.replace(**undo) == resolve_config("fashion-mnist")


def test_the_augmented_term_is_off_by_default_with_the_measured_transforms():
    loss = Config().loss
    assert loss.lambda_augmented == 0
    assert (loss.augment_degrees, loss.augment_shear, loss.augment_scale, loss.augment_shift) == (20, 0.3, 0.15, 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"optim": {"stepz": 3}}, "unknown key optim.stepz"),
        ({"colour": 1}, "unknown key colour"),
        ({"optim": {"steps": "many"}}, "optim.steps must be a whole number"),
        ({"optim": {"lr_d": -1.0}}, "optim.lr_d"),
        ({"latent": {"categorical": [10, 1]}}, "each needs 2 or more"),
        ({"latent": {"noise_scale": 0}}, "latent.noise_scale must be a number above 0"),
        ({"latent": {"noise_scale": float("nan")}}, "latent.noise_scale must be a number above 0"),
        ({"loss": {"lambda_augmented": -1}}, "loss.lambda_augmented must be 0 or more"),
        ({"loss": {"augment_degrees": 200}}, "loss.augment_degrees must be between 0 and 180"),
        ({"loss": {"augment_scale": 1.0}}, "loss.augment_scale must be at least 0 and below 1"),
        ({"loss": {"augment_shear": -0.1}}, "loss.augment_shear must be 0 or more"),
        ({"loss": {"augment_stroke": 1.5}}, "loss.augment_stroke must be between 0 and 1"),
        ({"loss": {"augment_elastic": -1}}, "loss.augment_elastic must be 0 or more"),
        ({"loss": {"augment_gamma": -0.5}}, "loss.augment_gamma must be between 0 and 4"),
        ({"loss": {"augment_shift": -2}}, "loss.augment_shift must be 0 or more"),
        ({"loss": {"augment_shift": float("inf")}}, "loss.augment_shift must be 0 or more"),
        ({"loss": {"lambda_augmented": float("nan")}}, "loss.lambda_augmented must be 0 or more"),
        ({"latent": {"noise_dim": 0, "categorical": [], "continuous": 0}}, "latent is empty"),
        ({"loss": {"info_update": "sometimes"}}, "choose one of both, generator_q, joint"),
        ({"model": {"image_size": 64}}, "model.image_size"),
        ({"optim": 5}, "optim must be a mapping"),
        ({"logging": {"tensorboard": "yes"}}, "true or false"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(InfoGANError, match=message):
        config_from_dict(data)


def test_overrides_and_files_layer_in_order(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("optim:\n  steps: 7\nloss:\n  lambda_continuous: 0.5\n")
    config = resolve_config("mnist", yaml_file, ["optim.steps=9", "latent.categorical=[10, 3]"])
    assert config.optim.steps == 9 and config.loss.lambda_continuous == 0.5
    assert config.latent.categorical == (10, 3)
    toml_file = tmp_path / "c.toml"
    toml_file.write_text("[optim]\nsteps = 11\n")
    assert resolve_config(None, toml_file).optim.steps == 11
    json_file = tmp_path / "c.json"
    json_file.write_text(json.dumps({"seed": 3}))
    assert resolve_config(None, json_file).seed == 3


def test_saved_config_reads_back_equal(tmp_path):
    config = Config().replace(**{"latent.categorical": [4, 5], "optim.steps": 3})
    save_config(config, tmp_path / "config.yaml")
    assert resolve_config(None, tmp_path / "config.yaml") == config


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.yaml", "optim: [1, 2\n", "not valid"),
        ("bad.toml", "optim = = 1", "not valid"),
        ("list.yaml", "- 1\n- 2\n", "must hold a mapping"),
    ],
)
def test_malformed_files_get_clear_errors(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InfoGANError, match=message):
        resolve_config(None, path)


def test_missing_file_and_bad_override():
    with pytest.raises(InfoGANError, match="does not exist"):
        resolve_config(None, "/nonexistent/config.yaml")
    with pytest.raises(InfoGANError, match="section.key=value"):
        resolve_config("mnist", None, ["optim.steps"])
    with pytest.raises(InfoGANError, match="unknown key"):
        resolve_config("mnist", None, ["optim.nothing=1"])


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=5))
_sections = st.dictionaries(
    st.sampled_from(["steps", "lr_d", "batch_size", "noise_dim", "categorical", "dataset", "x"]), _values, max_size=3
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["optim", "latent", "data", "seed", "loss"]), _sections | _values, max_size=3))
def test_any_plain_data_gives_a_config_or_a_clear_error(data):
    try:
        config = config_from_dict(data)
    except InfoGANError as exc:
        assert str(exc).startswith("config")
    else:
        assert isinstance(config, Config)


def test_lambda_codes_give_one_weight_per_code_in_order():
    config = resolve_config("mnist", overrides=["loss.lambda_codes=[1, 0.5, 10]"])
    assert config.loss.lambda_codes == (1.0, 0.5, 10.0)
    assert config.loss.code_weights(1, 2) == ([1.0], [0.5, 10.0])
    assert resolve_config("mnist").loss.code_weights(1, 2) == ([1.0], [1.0, 1.0])
    with pytest.raises(InfoGANError, match="has 2 values but the latent has 3 codes"):
        resolve_config("mnist", overrides=["loss.lambda_codes=[1, 2]"])
    with pytest.raises(InfoGANError, match="loss.lambda_codes must be a list of numbers"):
        resolve_config("mnist", overrides=["loss.lambda_codes=abc"])


def test_the_configuration_page_lists_every_key_with_the_mnist_presets_values():
    page = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    block = page.split("The `mnist` preset, with every key:", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    listed = yaml.safe_load(block)
    assert config_from_dict(listed) == resolve_config("mnist")

    def keys(data: dict, prefix: str = "") -> set[str]:
        return {
            k
            for key, value in data.items()
            for k in (keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}"})
        }

    assert keys(listed) == keys(Config().to_dict())
