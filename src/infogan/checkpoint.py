"""Checkpoints and exported weights as safetensors: tensors in the file, everything else as JSON
in its metadata. Nothing is pickled, so loading a file can never run code.

A training checkpoint holds the networks, the optimisers' states, the RNG states, the step and
the resolved config. An export holds the networks and the config only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from infogan.config import Config, config_from_dict
from infogan.errors import InfoGANError
from infogan.fileio import write_bytes_atomically, write_error
from infogan.shipped import resolve, shadowing_note

FORMAT = "infogan"
VERSION = 1
NON_NEGATIVE = ("exp_avg_sq", "max_exp_avg_sq", "step", "running_var", "num_batches_tracked")
VALUE_CHECKED = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int16, torch.int32, torch.int64)


class NonFiniteCheckpointError(InfoGANError):
    """A checkpoint holding values no training writes (NaN, infinity, a negative variance): refused,
    never skipped for an older one without a word."""


@dataclass
class Snapshot:
    """Everything one checkpoint file holds, as plain Python objects and state dicts."""

    kind: str  # "checkpoint" or "export"
    config: Config
    step: int
    networks: dict[str, dict[str, torch.Tensor]]
    optimizers: dict[str, dict[str, Any]]
    rng: dict[str, torch.Tensor]


def save_snapshot(path: str | Path, snapshot: Snapshot, then: str = "") -> None:
    """Write `snapshot` atomically: the bytes go to a temporary file of our own naming (see
    `infogan.fileio`), flushed to disk, then renamed over `path`. A failure is an InfoGANError
    (a full disk said as every writer says it) ending with `then`, what to do next."""
    path = Path(path)
    try:
        payload = snapshot_bytes(snapshot)
    except SafetensorError as exc:
        raise InfoGANError(f"cannot write the {snapshot.kind} {path}: {exc}{then}") from None
    try:
        write_bytes_atomically(path, payload)
    except OSError as exc:
        raise write_error(exc, path, f"the {snapshot.kind}", needed=len(payload), then=then) from None


def snapshot_bytes(snapshot: Snapshot) -> bytes:
    """The safetensors file of `snapshot`, in memory."""
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
    return save(tensors, metadata={"infogan": json.dumps(meta)})


def _flatten_optimizer(name: str, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return {"param_groups": state["param_groups"], "scalars": scalars}


def load_snapshot(path: str | Path) -> Snapshot:
    """Read a checkpoint or export written by `save_snapshot` (onto the CPU), with clear errors
    for other files and for metadata that is not what `save_snapshot` writes."""
    path = Path(path)
    if not path.is_file():
        raise InfoGANError(f"checkpoint {path} does not exist")
    snapshot = _load(path)
    problem = _impossible_values(snapshot)
    if problem:
        raise NonFiniteCheckpointError(f"{path} holds {problem}, which no training writes. {_finite_instead(path)}")
    return snapshot


def _load(path: Path) -> Snapshot:
    """The snapshot in a file, its values not yet checked (see `load_snapshot`)."""
    meta, tensors = _read(path)
    networks: dict[str, dict[str, torch.Tensor]] = {}
    optim_tensors: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
    rng: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        group, _, rest = key.partition(".")
        if group == "net" and "." in rest:
            net, _, name = rest.partition(".")
            networks.setdefault(net, {})[name] = value
        elif group == "optim" and rest.count(".") >= 2:
            opt, index, name = rest.split(".", 2)
            optim_tensors.setdefault(opt, {}).setdefault(index, {})[name] = value
        elif group == "rng":
            rng[rest] = value
        else:
            raise InfoGANError(f"{path} holds a tensor {key!r} that no infogan checkpoint has; it is not one of ours")
    try:
        optimizers = {
            name: _unflatten_optimizer(info, optim_tensors.get(name, {})) for name, info in meta["optimizers"].items()
        }
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InfoGANError(f"{path} has damaged optimiser metadata; it cannot be resumed") from None
    _check_rng(rng, meta["kind"], path)
    return Snapshot(meta["kind"], meta["config"], meta["step"], networks, optimizers, rng)


def _read(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The metadata and tensors of a file, its network tensors' shapes checked against its
    config (from the header) before any tensor is read."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = _parse_meta((handle.metadata() or {}).get("infogan"), path)
            keys = list(handle.keys())  # noqa: SIM118 (safe_open is not a dict)
            _check_shapes(path, meta["config"], {key: tuple(handle.get_slice(key).get_shape()) for key in keys})
            return meta, {key: handle.get_tensor(key) for key in keys}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InfoGANError(
            f"{path} is not a readable safetensors file ({exc}); it is damaged or not a checkpoint"
        ) from None


def _check_shapes(path: Path, config: Config, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse a file whose network tensors are not those of the networks its config describes."""
    contrastive = any(key.startswith("net.contrastive.") for key in shapes)
    found = {_plain_name(key): key for key in shapes if key.startswith("net.")}
    for name, shape in expected_shapes(config, contrastive).items():
        net = name.split(".")[1]
        if name not in found:
            raise InfoGANError(
                f"{path}: the {net} weights do not fit the networks its config describes "
                f"(no tensor {name} of shape {shape}); the file is damaged or its metadata was edited"
            )
        key = found[name]
        if shapes[key] != shape:
            raise InfoGANError(
                f"{path}: the {net} weights do not fit the networks its config describes: tensor {key} has "
                f"shape {shapes[key]} in the file, the config implies {shape}; the file is damaged or its "
                "metadata was edited"
            )


def expected_shapes(config: Config, contrastive: bool = False) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor of the networks `config` describes, named as in a file, from
    networks built on the meta device (nothing allocated). Spectral norm is left out (its set-up
    is slow there): its weights go by their plain names, its vectors are checked on loading."""
    from infogan.core.networks import build_contrastive, build_networks, has_contrastive  # core builds on config

    model = dataclasses.replace(config.model, spectral_norm=False)
    with torch.device("meta"):
        generator, discriminator = build_networks(model, config.latent)
        modules = {"generator": generator, "discriminator": discriminator}
        if contrastive and has_contrastive(model.architecture):
            modules["contrastive"] = build_contrastive(model, len(config.latent.code_names))
    states = {net: module.state_dict() for net, module in modules.items()}
    return {f"net.{net}.{key}": tuple(tensor.shape) for net, state in states.items() for key, tensor in state.items()}


def _plain_name(key: str) -> str:
    """A tensor's name without spectral norm's parametrisation: `x.parametrizations.weight.original` is `x.weight`."""
    return key.replace(".parametrizations.", ".").removesuffix(".original")


def _impossible_values(snapshot: Snapshot) -> str | None:
    """What in a snapshot no training writes (the first found), or None: NaN or infinity in a
    network or optimiser state, or a negative second moment, step count or batch-norm variance."""
    values = [(f"net.{net}.{key}", value) for net, state in snapshot.networks.items() for key, value in state.items()]
    for name, optimizer in snapshot.optimizers.items():
        for index, entries in optimizer["state"].items():
            values += [(f"optim.{name}.{index}.{key}", value) for key, value in entries.items()]
    for name, value in values:
        if isinstance(value, torch.Tensor):
            if value.dtype not in VALUE_CHECKED:
                continue  # no infogan checkpoint holds it: refused by its dtype when loaded
            finite = not value.is_floating_point() or bool(torch.isfinite(value).all())
            negative = bool((value < 0).any())
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            finite, negative = math.isfinite(value), value < 0
        else:
            continue
        if not finite:
            return f"NaN or infinity in tensor {name}"
        if negative and name.rsplit(".", 1)[-1] in NON_NEGATIVE:
            return f"negative values in tensor {name}"
    return None


def _finite_instead(path: Path) -> str:
    """Which checkpoint of the same run to use instead of `path`: the newest that can be used."""
    if path.parent.name != "checkpoints":
        return "Use a checkpoint written before training diverged."
    run_dir = path.parent.parent
    for other in reversed(checkpoint_paths(run_dir)):
        if other.name != path.name and _usable(other):
            move = f", or move the newer ones out of {path.parent} to resume from it" if other.name < path.name else ""
            return f"The newest checkpoint of {run_dir} with finite values is {other}: load that file{move}."
    return f"There is no other checkpoint of {run_dir} with finite values: train again, with lower learning rates."


def _usable(path: Path) -> bool:
    try:
        return _impossible_values(_load(path)) is None
    except InfoGANError:
        return False


def is_readable(path: Path) -> bool:
    """Whether `path` opens as an infogan checkpoint (header and metadata; tensors not read)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            _parse_meta((handle.metadata() or {}).get("infogan"), path)
    except (InfoGANError, SafetensorError, OSError, ValueError, RuntimeError):
        return False
    return True


def _parse_meta(raw: str | None, path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InfoGANError(f"{path} is a safetensors file but not an infogan checkpoint or export")
    if meta.get("version") != VERSION:
        raise InfoGANError(f"{path} has checkpoint version {meta.get('version')}; this infogan reads {VERSION}")
    problem = _meta_problem(meta)
    if problem:
        raise InfoGANError(f"{path} has damaged metadata: {problem}; it was not written by this infogan")
    try:
        meta["config"] = config_from_dict(meta["config"])
    except InfoGANError as exc:
        raise InfoGANError(f"{path} holds a config this infogan cannot use: {exc}") from None
    return meta


def _meta_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with the metadata's fields, or None."""
    if meta.get("kind") not in ("checkpoint", "export"):
        return f"kind is {meta.get('kind')!r}, not 'checkpoint' or 'export'"
    step = meta.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        return f"step is {step!r}, not a whole number 0 or more"
    if not isinstance(meta.get("config"), dict):
        return "there is no config"
    optimizers = meta.get("optimizers")
    if not isinstance(optimizers, dict) or (meta["kind"] == "checkpoint" and not optimizers):
        return "there is no optimiser state"
    for name, info in optimizers.items():
        if not isinstance(info, dict) or not isinstance(info.get("param_groups"), list):
            return f"optimiser {name!r} has no parameter groups"
        if not isinstance(info.get("scalars"), dict):
            return f"optimiser {name!r} has no scalar state"
    return None


def _check_rng(rng: dict[str, torch.Tensor], kind: str, path: Path) -> None:
    if kind != "checkpoint":
        return
    for name in ("latent", *(set(rng) - {"latent"})):
        state = rng.get(name)
        if state is None or state.dtype != torch.uint8 or state.ndim != 1:
            got = "missing" if state is None else f"{state.dtype} of shape {tuple(state.shape)}"
            raise InfoGANError(f"{path} has a damaged random-generator state {name!r} ({got}, expected uint8 bytes)")


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


def load_latest_valid(run_dir: str | Path) -> tuple[Snapshot, Path]:
    """The newest checkpoint of a run that loads; damaged ones are skipped with a warning."""
    paths = checkpoint_paths(run_dir)
    if not paths:
        latest_checkpoint(run_dir)  # raises the "no checkpoints" error
    problems = []
    for path in reversed(paths):
        try:
            snapshot = load_snapshot(path)
        except NonFiniteCheckpointError:
            raise
        except InfoGANError as exc:
            problems.append(str(exc))
            print(f"warning: skipping {path.name}: {exc}", file=sys.stderr)
            continue
        return snapshot, path
    raise InfoGANError(f"no checkpoint of {run_dir} can be loaded:\n  " + "\n  ".join(problems))


def load_model(path: str | Path) -> Snapshot:
    """The snapshot behind a run directory (newest valid checkpoint), an export folder, a file or
    the name of a shipped model (see `infogan.shipped.resolve`)."""
    path = resolve(path)
    try:
        if path.is_file():
            return load_snapshot(path)
        if (path / "model.safetensors").is_file():
            return load_snapshot(path / "model.safetensors")
        return load_latest_valid(path)[0]
    except InfoGANError as exc:
        note = shadowing_note(path)
        if note:  # a folder here named like a shipped model, and not a model: say which was read
            raise InfoGANError(f"{exc}{note}") from None
        raise


# -- loading into networks and optimisers, after checking every tensor -----------------------


def load_networks(
    modules: dict[str, nn.Module], networks: dict[str, dict[str, torch.Tensor]], widen_half: bool = False
) -> None:
    """Load weights into `modules` once every tensor's name, shape and dtype fits them.

    Weights of another dtype are refused rather than cast, except, with `widen_half` (an export
    written with `half`), float16 weights of float32 parameters: widening them is exact.
    """
    for name, module in modules.items():
        state = networks.get(name)
        if state is None:
            raise InfoGANError(f"the file holds no {name} weights")
        expected = module.state_dict()
        if widen_half:
            state = {key: _widened(value, expected.get(key)) for key, value in state.items()}
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise InfoGANError(
                f"the {name} weights do not fit the network their config describes "
                f"(missing: {', '.join(missing[:3]) or 'none'}; unexpected: {', '.join(unexpected[:3]) or 'none'})"
            )
        for key, tensor in expected.items():
            _check_tensor(state[key], tuple(tensor.shape), tensor.dtype, f"{name} weight {key}")
        module.load_state_dict(state)


def load_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any], name: str) -> None:
    """Load an optimiser state once its groups, hyperparameters and per-parameter tensors fit."""
    groups, saved_groups = optimizer.param_groups, state["param_groups"]
    if len(groups) != len(saved_groups):
        raise InfoGANError(f"optimiser {name}: {len(saved_groups)} parameter groups saved, {len(groups)} expected")
    params = []
    for group, saved in zip(groups, saved_groups):
        if not isinstance(saved, dict) or len(saved.get("params", ())) != len(group["params"]):
            raise InfoGANError(f"optimiser {name}: the saved parameter groups do not match the networks")
        for key, value in group.items():
            if key != "params" and not _same_kind(value, saved.get(key)):
                raise InfoGANError(f"optimiser {name}: {key} is {saved.get(key)!r}, expected a value like {value!r}")
        params += group["params"]
    for index, entries in state["state"].items():
        if not 0 <= index < len(params):
            raise InfoGANError(f"optimiser {name}: state for parameter {index}, but there are {len(params)}")
        for key, value in entries.items():
            if isinstance(value, torch.Tensor) and value.ndim > 0:
                param = params[index]
                _check_tensor(value, tuple(param.shape), param.dtype, f"optimiser {name} {key} of parameter {index}")
            elif isinstance(value, torch.Tensor) and not value.is_floating_point():
                raise InfoGANError(f"optimiser {name}: {key} of parameter {index} is {value.dtype}, not a float")
    optimizer.load_state_dict(state)


def halved(state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """`state` with its float32 tensors as float16, for an export written with `half`; a value
    float16 cannot hold (beyond +-65,504) is refused rather than turned into infinity."""
    halved_state = {}
    for key, tensor in state.items():
        if tensor.dtype == torch.float32:
            if tensor.numel() and tensor.detach().abs().max() > torch.finfo(torch.float16).max:
                raise InfoGANError(
                    f"{name} weight {key} holds values beyond float16's range (65,504); "
                    "export it without half precision"
                )
            tensor = tensor.half()
        halved_state[key] = tensor
    return halved_state


def _widened(tensor: torch.Tensor, expected: torch.Tensor | None) -> torch.Tensor:
    """A float16 tensor as float32 where the network's own tensor is float32 (else unchanged)."""
    if expected is not None and tensor.dtype == torch.float16 and expected.dtype == torch.float32:
        return tensor.float()
    return tensor


def _check_tensor(tensor: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype, what: str) -> None:
    if tuple(tensor.shape) != shape:
        raise InfoGANError(f"{what} has shape {tuple(tensor.shape)}, the model needs {shape}")
    if tensor.dtype != dtype:
        raise InfoGANError(f"{what} is stored as {tensor.dtype}, the model uses {dtype}; weights are never cast")


def _same_kind(expected: Any, value: Any) -> bool:
    """Whether a saved hyperparameter has the type of the current one (a number, a flag, a pair)."""
    if isinstance(expected, bool) or expected is None:
        return isinstance(value, bool) or value is None
    if isinstance(expected, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(expected, tuple):
        return (
            isinstance(value, tuple)
            and len(value) == len(expected)
            and all(_same_kind(e, v) for e, v in zip(expected, value))
        )
    return True
