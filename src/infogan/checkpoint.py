"""Checkpoints and exported weights as safetensors: tensors in the file, everything else as JSON
in its metadata. Nothing is pickled, so loading a file can never run code.

A training checkpoint holds the networks, the optimisers' states, the RNG states, the step and
the resolved config. An export holds the networks and the config only.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import Config, config_from_dict
from .errors import InfoGANError
from .fileio import atomic_write

FORMAT = "infogan"
VERSION = 1


@dataclass
class Snapshot:
    """Everything one checkpoint file holds, as plain Python objects and state dicts."""

    kind: str  # "checkpoint" or "export"
    config: Config
    step: int
    networks: dict[str, dict[str, torch.Tensor]]
    optimizers: dict[str, dict[str, Any]]
    rng: dict[str, torch.Tensor]


def save_snapshot(path: str | Path, snapshot: Snapshot) -> None:
    """Write `snapshot` atomically: a temporary file, flushed to disk, then renamed over `path`."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "kind": snapshot.kind,
        "step": snapshot.step,
        "config": snapshot.config.to_dict(),
        "optimizers": {},
    }
    for net, state in snapshot.networks.items():
        for key, value in state.items():
            tensors[f"net.{net}.{key}"] = value.detach().cpu().contiguous()
    for name, state in snapshot.optimizers.items():
        meta["optimizers"][name] = _flatten_optimizer(name, state, tensors)
    for name, state in snapshot.rng.items():
        tensors[f"rng.{name}"] = state.cpu().contiguous()
    try:
        with atomic_write(path) as tmp:
            save_file(tensors, str(tmp), metadata={"infogan": json.dumps(meta)})
    except OSError as exc:
        raise InfoGANError(
            f"cannot write {path}: {exc.strerror or exc}; free disk space or choose a writable folder "
            "(the previous checkpoint is intact)"
        ) from None


def _flatten_optimizer(name: str, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return {"param_groups": state["param_groups"], "scalars": scalars}


def load_snapshot(path: str | Path, device: str | torch.device = "cpu") -> Snapshot:
    """Read a checkpoint or export written by `save_snapshot`, with clear errors for other files."""
    path = Path(path)
    if not path.is_file():
        raise InfoGANError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            raw_meta = (handle.metadata() or {}).get("infogan")
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InfoGANError(
            f"{path} is not a readable safetensors file ({exc}); it is damaged or not a checkpoint"
        ) from None
    meta = _parse_meta(raw_meta, path)
    networks: dict[str, dict[str, torch.Tensor]] = {}
    optim_tensors: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
    rng: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        group, _, rest = key.partition(".")
        if group == "net":
            net, _, name = rest.partition(".")
            networks.setdefault(net, {})[name] = value
        elif group == "optim":
            opt, index, name = rest.split(".", 2)
            optim_tensors.setdefault(opt, {}).setdefault(index, {})[name] = value
        elif group == "rng":
            rng[rest] = value.cpu()
    optimizers = {
        name: _unflatten_optimizer(info, optim_tensors.get(name, {})) for name, info in meta["optimizers"].items()
    }
    return Snapshot(meta["kind"], meta["config"], meta["step"], networks, optimizers, rng)


def _parse_meta(raw: str | None, path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InfoGANError(f"{path} is a safetensors file but not an infogan checkpoint or export")
    if meta.get("version") != VERSION:
        raise InfoGANError(f"{path} has checkpoint version {meta.get('version')}; this infogan reads {VERSION}")
    meta["config"] = config_from_dict(meta["config"])
    return meta


def _unflatten_optimizer(info: dict[str, Any], tensors: dict[str, dict[str, torch.Tensor]]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for index, entries in tensors.items():
        state[int(index)] = dict(entries)
    for index, entries in info["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = [
        {key: tuple(value) if isinstance(value, list) and key != "params" else value for key, value in group.items()}
        for group in info["param_groups"]
    ]  # JSON turned tuples such as Adam's betas into lists
    return {"state": state, "param_groups": groups}


def checkpoint_paths(run_dir: str | Path) -> list[Path]:
    """A run's checkpoint files, oldest first."""
    return sorted(Path(run_dir, "checkpoints").glob("step-*.safetensors"))


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest checkpoint of a run directory."""
    paths = checkpoint_paths(run_dir)
    if not paths:
        raise InfoGANError(
            f"{run_dir} holds no checkpoints (expected {Path(run_dir, 'checkpoints')}/step-*.safetensors); "
            "train first with: infogan train --out " + str(run_dir)
        )
    return paths[-1]


def load_latest_valid(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Snapshot, Path]:
    """The newest checkpoint of a run that loads; damaged ones are skipped with a warning."""
    paths = checkpoint_paths(run_dir)
    if not paths:
        latest_checkpoint(run_dir)  # raises the "no checkpoints" error
    problems = []
    for path in reversed(paths):
        try:
            snapshot = load_snapshot(path, device)
        except InfoGANError as exc:
            problems.append(str(exc))
            print(f"warning: skipping {path.name}: {exc}", file=sys.stderr)
            continue
        return snapshot, path
    raise InfoGANError(f"no checkpoint of {run_dir} can be loaded:\n  " + "\n  ".join(problems))


def remove_partial_files(run_dir: str | Path) -> None:
    """Delete temporary files left by a checkpoint write that was killed midway."""
    for leftover in Path(run_dir, "checkpoints").glob(".step-*.part"):
        leftover.unlink(missing_ok=True)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Snapshot:
    """The snapshot behind a run directory (newest valid checkpoint), an export folder or a file."""
    path = Path(path)
    if path.is_file():
        return load_snapshot(path, device)
    if (path / "model.safetensors").is_file():
        return load_snapshot(path / "model.safetensors", device)
    if path.is_dir():
        return load_latest_valid(path, device)[0]
    raise InfoGANError(f"{path} does not exist; give a run directory, an export directory or a .safetensors file")
