"""Typed, frozen training configuration: load from YAML, TOML or JSON, override, validate, save.

Every section is a frozen dataclass that checks itself. The components own theirs: `latent` is
the generator's `LatentSpec` (latent.py), `model` the networks' `ModelConfig` (models/config.py),
`contrastive` InfoGAN-CR's regulariser (contrastive.py), `runtime` the `RuntimeConfig`
(runtime.py), `distributed` training across ranks (distributed.py); the loss, optimiser, data and logging sections are
here. This module composes them and parses files and overrides. Unknown keys, wrong types and
out-of-range values raise `InfoGANError` naming the key, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from infogan.core.contrastive import ContrastiveConfig
from infogan.core.latent import LatentSpec
from infogan.core.networks.config import ModelConfig
from infogan.errors import InfoGANError, require, require_choice, short_repr
from infogan.fileio import write_bytes_atomically
from infogan.runtime import DistributedConfig, RuntimeConfig

ADVERSARIAL_LOSSES = ("nonsaturating", "least_squares")
CONTINUOUS_INFO_LOSSES = ("fixed_std", "learned_std", "squared_error")
INFO_UPDATES = ("both", "generator_q", "joint")
DATASETS = ("mnist", "fashion-mnist", "svhn", "dsprites", "folder")
BAD_FILE_POLICIES = ("skip", "error")
# The largest sizes a config may ask for: far above any model of the papers, low enough that no
# config (a checkpoint's metadata included) can make the networks or a batch take gigabytes.
SIZE_LIMITS = {
    "latent.noise_dim": 1024,
    "latent.categorical": 1000,  # values of one categorical code
    "latent.codes": 32,  # categorical codes, and continuous ones
    "model.width": 256,
    "model.hidden": 4096,
    "model.image_size": 1024,
    "optim.batch_size": 8192,
}


@dataclass(frozen=True)
class LossConfig:
    """The objective V(D, G) - lambda * L_I and which parameters the info term trains."""

    adversarial: str = "nonsaturating"
    continuous_info: str = "fixed_std"
    lambda_categorical: float = 1.0
    lambda_continuous: float = 1.0
    lambda_codes: tuple[float, ...] = ()
    info_update: str = "both"
    lambda_augmented: float = 0.0  # 0: the paper; the transforms below are the ones measured
    augment_degrees: float = 20.0
    augment_shift: float = 2.0
    augment_scale: float = 0.15
    augment_shear: float = 0.3
    augment_stroke: float = 0.0  # 0: off; up to 1: how far strokes thicken or thin (1 = one pixel)
    augment_elastic: float = 0.0  # 0: off; else a smooth warp moving control points up to this many pixels
    augment_gamma: float = 0.0  # 0: off; else intensities raised to a power between 1/(1+g) and 1+g

    def __post_init__(self) -> None:
        require_choice(self.adversarial, ADVERSARIAL_LOSSES, "loss.adversarial")
        require_choice(self.continuous_info, CONTINUOUS_INFO_LOSSES, "loss.continuous_info")
        require_choice(self.info_update, INFO_UPDATES, "loss.info_update")
        require(0 <= self.lambda_categorical < math.inf, "loss.lambda_categorical", "must be 0 or more")
        require(0 <= self.lambda_continuous < math.inf, "loss.lambda_continuous", "must be 0 or more")
        require(all(0 <= w < math.inf for w in self.lambda_codes), "loss.lambda_codes", "must hold numbers 0 or more")
        require(0 <= self.lambda_augmented < math.inf, "loss.lambda_augmented", "must be 0 or more")
        require(0 <= self.augment_degrees <= 180, "loss.augment_degrees", "must be between 0 and 180")
        require(0 <= self.augment_shift < math.inf, "loss.augment_shift", "must be 0 or more (pixels)")
        require(0 <= self.augment_scale < 1, "loss.augment_scale", "must be at least 0 and below 1")
        require(0 <= self.augment_shear < math.inf, "loss.augment_shear", "must be 0 or more")
        require(0 <= self.augment_stroke <= 1, "loss.augment_stroke", "must be between 0 and 1")
        require(0 <= self.augment_elastic < math.inf, "loss.augment_elastic", "must be 0 or more (pixels)")
        require(0 <= self.augment_gamma <= 4, "loss.augment_gamma", "must be between 0 and 4")

    def code_weights(self, n_categorical: int, n_continuous: int) -> tuple[list[float], list[float]]:
        """lambda of each categorical and each continuous code: `lambda_codes` (one per code,
        categorical first) when given, else lambda_categorical / lambda_continuous for all."""
        if self.lambda_codes:
            return list(self.lambda_codes[:n_categorical]), list(self.lambda_codes[n_categorical:])
        return [self.lambda_categorical] * n_categorical, [self.lambda_continuous] * n_continuous


@dataclass(frozen=True)
class OptimConfig:
    """Adam settings, batch size and length of training. generator_steps: G updates per D update
    (InfoGAN-CR's code makes two, on the same latents)."""

    lr_d: float = 2e-4
    lr_g: float = 1e-3
    lr_info: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 128
    steps: int = 5000
    generator_steps: int = 1

    def __post_init__(self) -> None:
        for name in ("lr_d", "lr_g", "lr_info"):
            require(0 < getattr(self, name) < 1, f"optim.{name}", "must be in (0, 1)")
        for name in ("beta1", "beta2"):
            require(0 <= getattr(self, name) < 1, f"optim.{name}", "must be in [0, 1)")
        require(self.batch_size >= 2, "optim.batch_size", "must be 2 or more (batch norm)")
        require(self.steps >= 1, "optim.steps", "must be 1 or more")
        require(1 <= self.generator_steps <= 10, "optim.generator_steps", "must be between 1 and 10")


@dataclass(frozen=True)
class DataConfig:
    """Which data set trains the model (its training split; labels are never used).

    `folder` reads every PNG/JPEG below `path`; `on_bad_file` says whether an unreadable file
    there is skipped (with a count) or an error.
    """

    dataset: str = "mnist"
    path: str = ""
    on_bad_file: str = "skip"

    def __post_init__(self) -> None:
        require_choice(self.dataset, DATASETS, "data.dataset")
        require_choice(self.on_bad_file, BAD_FILE_POLICIES, "data.on_bad_file")
        require(
            self.dataset != "folder" or bool(self.path),
            "data.path",
            "is empty; data.dataset: folder needs the folder of images (e.g. --set data.path=photos/)",
        )


@dataclass(frozen=True)
class LoggingConfig:
    """How often to log metrics, draw progress images and write checkpoints (in steps)."""

    log_every: int = 50
    image_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    tensorboard: bool = True

    def __post_init__(self) -> None:
        for name in ("log_every", "image_every", "checkpoint_every", "keep_checkpoints"):
            require(getattr(self, name) >= 1, f"logging.{name}", "must be 1 or more")


@dataclass(frozen=True)
class Config:
    """A complete, resolved training configuration."""

    seed: int = 0
    latent: LatentSpec = field(default_factory=LatentSpec)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def __post_init__(self) -> None:
        self._check_sizes()
        self._check_contrastive()
        n_codes = len(self.latent.categorical) + self.latent.continuous
        require(
            len(self.loss.lambda_codes) in (0, n_codes),
            "loss.lambda_codes",
            f"has {len(self.loss.lambda_codes)} values but the latent has {n_codes} codes; give one "
            "lambda per code (categorical codes first) or an empty list",
        )

    def _check_sizes(self) -> None:
        """Refuse sizes beyond SIZE_LIMITS, before anything is built from them."""
        latent, limit = self.latent, SIZE_LIMITS
        for key, value in (
            ("latent.noise_dim", latent.noise_dim),
            ("model.width", self.model.width),
            ("model.hidden", self.model.hidden),
            ("model.image_size", self.model.image_size),
            ("optim.batch_size", self.optim.batch_size),
        ):
            require(value <= limit[key], key, f"is {value}; it can be at most {limit[key]}")
        widest = max(latent.categorical, default=0)
        require(
            widest <= limit["latent.categorical"],
            "latent.categorical",
            f"has a code with {widest} values; a code can have at most {limit['latent.categorical']}",
        )
        for key, count in (("latent.categorical", len(latent.categorical)), ("latent.continuous", latent.continuous)):
            require(count <= limit["latent.codes"], key, f"asks for {count} codes; at most {limit['latent.codes']}")

    def _check_contrastive(self) -> None:
        from infogan.core.networks import ARCHITECTURES, has_contrastive

        if not self.contrastive.enabled:
            return
        with_h = ", ".join(name for name in ARCHITECTURES if has_contrastive(name))
        require(
            has_contrastive(self.model.architecture),
            "contrastive.alpha",
            f"is above 0, but the {self.model.architecture!r} architecture has no contrastive network; "
            f"use one that has ({with_h}) or set contrastive.alpha: 0",
        )
        require(
            len(self.latent.code_names) >= 2,
            "contrastive.alpha",
            "is above 0, but the contrastive regulariser needs two or more codes to tell apart",
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists), ready for YAML or JSON."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **overrides: Any) -> Config:
        """A copy with dotted-key overrides applied, e.g. replace(**{"optim.steps": 10})."""
        data = self.to_dict()
        for key, value in overrides.items():
            _set_dotted(data, key, value)
        return config_from_dict(data)


# ---------------------------------------------------------------------------------------------
# Building from plain data


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build a validated Config from nested plain data; missing keys take their defaults."""
    return _build(Config, data, "")


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        raise InfoGANError(f"config: {where} must be a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted((key for key in data if key not in known), key=str)
    if unknown:
        raise InfoGANError(
            f"config: unknown key {prefix}{short_repr(str(unknown[0]))[1:-1]}; keys allowed at {where}: "
            + ", ".join(sorted(known))
        )
    values = {name: _coerce(hints[name], data[name], prefix + name) for name in data}
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".")
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            kind = "whole numbers" if item is int else "numbers"
            raise InfoGANError(f"config: {key} must be a list of {kind}, got {short_repr(value)}")
        return tuple(_coerce(item, v, key) for v in value)
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported config type {hint}")  # programming error, not user input
    if hint is bool:
        if not isinstance(value, bool):
            raise InfoGANError(f"config: {key} must be true or false, got {short_repr(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InfoGANError(f"config: {key} must be a whole number, got {short_repr(value)}")
        return value
    if hint is float:
        if isinstance(value, str):
            value = _float_from_text(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InfoGANError(f"config: {key} must be a number, got {short_repr(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise InfoGANError(f"config: {key} must be text, got {short_repr(value)}")
        return value
    raise TypeError(f"unsupported config type {hint}")


def _float_from_text(text: str) -> float | str:
    """Text that Python reads as a float (YAML 1.1 reads `2e-4` as text), else the text itself."""
    try:
        return float(text.strip())
    except ValueError:
        return text


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            raise InfoGANError(f"config: unknown key {key!r} (no section {part!r})")
        node = child
    if parts[-1] not in node:
        raise InfoGANError(f"config: unknown key {key!r}")
    node[parts[-1]] = value


# ---------------------------------------------------------------------------------------------
# Files, presets and overrides


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML, TOML or JSON file into plain data, with a clear error when it is malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InfoGANError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InfoGANError(f"config file {path} cannot be read: {exc}") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InfoGANError(f"config file {path} is not valid {path.suffix or 'YAML'}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InfoGANError(f"config file {path} must hold a mapping of keys to values")
    return data


def preset_names() -> list[str]:
    """Names of the presets shipped with the package, as `infogan presets` lists them."""
    folder = resources.files("infogan") / "presets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The plain data of a shipped preset."""
    if name not in preset_names():
        raise InfoGANError(f"unknown preset {name!r}; choose one of {', '.join(preset_names())}")
    text = (resources.files("infogan") / "presets" / f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def parse_override(text: str) -> tuple[str, Any]:
    """Split 'optim.steps=100' into a key and a YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InfoGANError(f"override {text!r} must look like section.key=value (e.g. optim.steps=100)")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def resolve_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: typing.Iterable[str] = (),
) -> Config:
    """Preset, then config file, then `key=value` overrides, each on top of the last."""
    data = Config().to_dict()  # every key present, so any of them can be overridden
    if preset:
        _merge(data, load_preset(preset))
    if config_file is not None:
        _merge(data, read_config_file(config_file))
    for text in overrides:
        _set_dotted(data, *parse_override(text))
    return config_from_dict(data)  # validated once: some settings only make sense together


def _merge(base: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically: complete or not at all)."""
    write_bytes_atomically(path, yaml.safe_dump(config.to_dict(), sort_keys=False).encode("utf-8"))
