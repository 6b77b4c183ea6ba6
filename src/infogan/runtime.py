"""How a run executes, as opposed to what it learns: device, precision, compilation, threads, the
data folder and the reaction to NaN. Saved with the run (config `runtime` section) so that a
resume continues the way the run started, and one device resolution for every command."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from infogan.errors import InfoGANError, require

PRECISIONS = ("fp32", "bf16")
CUDA_GRAPH_MODES = ("auto", "on", "off")
NONFINITE_POLICIES = ("stop", "rollback")

# Settings whose change makes a resumed run differ from an uninterrupted one (on the same machine).
BIT_IDENTITY_KEYS = ("device", "precision", "compile", "cuda_graphs", "threads")


@dataclass(frozen=True)
class RuntimeConfig:
    """Execution settings of a run.

    device: "auto" (a CUDA GPU when PyTorch sees one, else the CPU), "cpu", "cuda" or "cuda:N".
    precision: "fp32", or "bf16" for forward passes under bfloat16 autocast.
    compile: torch.compile the networks. cuda_graphs: "auto" (on for a CUDA device unless
    compiling), "on" or "off". threads: CPU threads for PyTorch, 0 for its own default (the
    command line records the count it used). data_dir: folder searched first for the data set
    files ("" for the usual search order); training records the folder it read them from, which a
    resume and the commands that read the run search first. on_nonfinite: "stop" or "rollback".
    """

    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    cuda_graphs: str = "auto"
    threads: int = 0
    data_dir: str = ""
    on_nonfinite: str = "stop"

    def __post_init__(self) -> None:
        check_device_name(self.device, "config: runtime.device")
        for key, value, choices in (
            ("precision", self.precision, PRECISIONS),
            ("cuda_graphs", self.cuda_graphs, CUDA_GRAPH_MODES),
            ("on_nonfinite", self.on_nonfinite, NONFINITE_POLICIES),
        ):
            if value not in choices:
                raise InfoGANError(f"config: runtime.{key} is {value!r}; choose one of {', '.join(choices)}")
        if self.threads < 0:
            raise InfoGANError("config: runtime.threads must be 0 (PyTorch's default) or more")


def check_device_name(name: str, where: str = "--device") -> None:
    """Refuse device names infogan cannot train on, without asking the hardware."""
    kind, _, index = str(name).partition(":")
    if kind in ("auto", "cpu") and not index:
        return
    if kind == "cuda" and (not index or index.isdigit()):
        return
    hint = " (Apple's mps backend is not supported)" if kind == "mps" else ""
    raise InfoGANError(f"{where} is {name!r}{hint}; choose auto, cpu, cuda or cuda:N")


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device for a device name, or a clear error when it cannot be used here."""
    name = str(name)
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InfoGANError(f"--device {name} was asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InfoGANError(
                f"--device {name} was asked for, but this machine has {torch.cuda.device_count()} CUDA GPU(s) "
                "(numbered from 0)"
            )
    return device


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has oneDNN's bfloat16 kernels (AVX-512 or AMX). Without them (an AVX2-only
    CPU) bf16 autocast falls back to slow generic code: MNIST training ran 20 times slower than in
    float32 on such a CPU (benchmarks/results/throughput-cpu)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: no fast path either
        return False


def slow_precision_warning(precision: str, device: torch.device) -> str | None:
    """The warning for bf16 autocast on a CPU without bfloat16 kernels, or None."""
    if precision != "bf16" or device.type != "cpu" or cpu_has_fast_bf16():
        return None
    return (
        "warning: --precision bf16 on a CPU without bfloat16 instructions (no AVX-512 or AMX; PyTorch sees "
        f"{torch.backends.cpu.get_cpu_capability()}): it runs many times slower than float32 here "
        "(20 times in this project's measurement); use --precision fp32 (runtime.precision: fp32)"
    )


def use_cuda_graphs(mode: str, compile: bool, device: torch.device) -> bool:
    """Whether steps are replayed from CUDA graphs: "auto" on a CUDA GPU unless compiling."""
    if mode == "auto":
        return device.type == "cuda" and not compile
    if mode == "on" and device.type != "cuda":
        raise InfoGANError(f"CUDA graphs need a CUDA GPU, but the device is {device.type}; use --device cuda")
    if mode == "on" and compile:
        raise InfoGANError("CUDA graphs and --compile do not go together; choose one")
    return mode == "on"


def changes_breaking_identity(saved: RuntimeConfig, requested: RuntimeConfig) -> list[str]:
    """The settings that differ in a way that makes a resumed run differ from an uninterrupted one."""
    return [
        f"runtime.{key} ({getattr(saved, key)!r} -> {getattr(requested, key)!r})"
        for key in BIT_IDENTITY_KEYS
        if getattr(saved, key) != getattr(requested, key)
    ]


@dataclass(frozen=True)
class DistributedConfig:
    """The config's `distributed` section. sync_batchnorm: batch norm normalises with statistics
    over the whole global batch, across ranks, instead of each rank's share (no effect on one
    process). world_size: how many ranks trained the run, recorded by infogan from the launcher
    (not a setting)."""

    sync_batchnorm: bool = False
    world_size: int = 1

    def __post_init__(self) -> None:
        require(self.world_size >= 1, "distributed.world_size", "must be 1 or more")
