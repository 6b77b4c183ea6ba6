"""Which config a training run gets: a new run's from a preset, a file or a `Config`, a resumed
run's from its checkpoint, and the checks that a resume changes only what it may."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import infogan.checkpoint as ckpt
from infogan.config import Config, parse_override, preset_names, resolve_config
from infogan.errors import InfoGANError
from infogan.runtime import changes_breaking_identity
from infogan.training.run_directory import RunDirectory

# Keys that may change when a run is resumed; any other change is refused.
RESUMABLE_CHANGES = ("optim.steps", "optim.lr_d", "optim.lr_g", "optim.lr_info", "contrastive.lr")
CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".json")

ConfigSource = Config | str | Path | None


def training_config(
    run: RunDirectory | None,
    resume: bool,
    source: ConfigSource = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    runtime: dict[str, Any] | None = None,
) -> tuple[Config, ckpt.Snapshot | None]:
    """The config a training run asks for, and the checkpoint it resumes from (or None).

    A new run: `source` (a preset name, a config file put on top of `preset` or of mnist, or a
    `Config`), the overrides, then the runtime settings. A resume: the run's saved config (or,
    with a source or preset, that config checked against the run), the overrides, the saved
    runtime settings and then those given now.
    """
    runtime = {f"runtime.{key}": value for key, value in (runtime or {}).items()}
    if not resume:
        if run is not None and run.has_run():
            raise InfoGANError(f"{run.path} already holds a run; pass --resume to continue it or choose another --out")
        return requested_config(source, preset, overrides).replace(**runtime), None
    snapshot, _ = run.latest_valid()
    parsed = dict(parse_override(text) for text in overrides)
    if source is not None or preset:
        config = requested_config(source, preset, overrides)
        saved_runtime = {f"runtime.{key}": value for key, value in snapshot.config.to_dict()["runtime"].items()}
        config = config.replace(**saved_runtime, **{k: v for k, v in parsed.items() if k.startswith("runtime.")})
    else:
        config = snapshot.config.replace(**parsed)
    config = config.replace(**runtime)
    check_resumable(snapshot.config, config)
    return config, snapshot


def requested_config(source: ConfigSource, preset: str | None = None, overrides: Sequence[str] = ()) -> Config:
    """The config of a preset name, a config file (on top of `preset`) or a `Config`, with the
    overrides applied; no source means `preset`, or the mnist preset."""
    if isinstance(source, Config):
        if preset:
            raise InfoGANError("give a Config or a preset, not both")
        return source.replace(**dict(parse_override(text) for text in overrides))
    if source is None:
        return resolve_config(preset or "mnist", None, overrides)
    if _is_file(source):
        return resolve_config(preset, source, overrides)
    if preset:
        raise InfoGANError(f"{source!r} is neither a preset to put on top of {preset!r} nor a config file")
    return resolve_config(str(source), None, overrides)


def _is_file(source: str | Path) -> bool:
    """Whether a source names a config file (a path that exists, or one with a config suffix;
    a missing file is then reported by the reader) rather than a preset."""
    text = str(source)
    if isinstance(source, Path) or Path(text).suffix.lower() in CONFIG_SUFFIXES or Path(text).exists():
        return True
    return text not in preset_names() and ("/" in text or "\\" in text)


def check_resumable(saved: Config, requested: Config) -> list[str]:
    """Refuse to resume when anything but the length of training, the learning rates, logging,
    runtime or distributed settings (the world size among them) changed. Returns the changes
    that are allowed, for the run's history."""
    saved_data, requested_data = saved.to_dict(), requested.to_dict()
    fixed_saved, fixed_requested = _without_changeable(saved_data), _without_changeable(requested_data)
    if fixed_saved != fixed_requested:
        raise InfoGANError(
            "cannot resume: the config differs from the checkpoint's in "
            + ", ".join(_changed_keys(fixed_saved, fixed_requested))
            + ". Only "
            + ", ".join(RESUMABLE_CHANGES)
            + ", logging.*, runtime.* and distributed.* may change on resume; start a new run for the rest."
        )
    return _changed_keys(saved_data, requested_data)


def breaks_bit_identity(saved: Config, requested: Config) -> list[str]:
    return changes_breaking_identity(saved.runtime, requested.runtime)


def _without_changeable(data: dict) -> dict:
    data = json.loads(json.dumps(data))
    for key in RESUMABLE_CHANGES:
        section, name = key.split(".")
        data[section].pop(name)
    for section in ("logging", "runtime", "distributed"):
        data.pop(section, None)
    return data


def _changed_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            keys += _changed_keys(a[key], b[key], f"{prefix}{key}.")
        elif a.get(key) != b.get(key):
            keys.append(f"{prefix}{key} ({a.get(key)!r} -> {b.get(key)!r})")
    return keys
