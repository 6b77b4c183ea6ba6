"""Data-parallel training across processes, as torchrun launches them: who this process is in
the group (`World`), starting and ending the process group, and the collectives training needs.

Semantics (the README's "Training on several GPUs" says the same for users):

- `optim.batch_size` is the global batch. Each step every rank draws the whole global batch of
  latents (and of transform draws and contrastive pairs) from the run's generators, whose states
  stay identical on every rank, and keeps its own rows of it; the real images are its own rows of
  the global batch that one process would take at that step. So no two ranks see the same images
  in a step, a run is reproducible for a world size, the generators' states in a checkpoint are
  every rank's, and a run resumed on another world size goes on with the same global batches.
- Gradients are averaged across ranks by hand, not by DistributedDataParallel: one flattened
  all-reduce over exactly the parameters an optimiser steps, after that loss's backward and
  before `optimizer.step()`. A step calls D's trunk several times for one backward (the joined
  real/fake pass, the augmented term, Q), calls it frozen for G's update, calls methods other
  than `forward` (`forward_real_fake`) and calls G three times for one backward once the
  contrastive regulariser runs; DDP's hooks fire per forward/backward pair of `forward` and on
  parameters that require grad at wrap time, so each of those needs `no_sync`, `static_graph` or
  `find_unused_parameters` (which walks the graph every step), and "generator_q", where Q's head
  trains in G's optimiser through a D call that must otherwise skip reduction, would desynchronise
  silently. Reducing per optimiser step cannot miss or double a parameter whatever the step calls;
  what it gives up is DDP's overlap of communication with the backward pass.
  benchmarks/results/scaling-cpu/README.md has the measured cost of both.
- Batch norm keeps per-rank statistics unless `distributed.sync_batchnorm` (statistics over the
  global batch: `torch.nn.SyncBatchNorm` on CUDA, `GlobalBatchNorm` below on the CPU, where
  PyTorch's runs only on GPUs). Running statistics are averaged across ranks before every
  checkpoint and progress image, so the file holds one estimate for the whole world.
- The step's statistics are summed across ranks before they are checked or logged; a NaN on any
  rank stops every rank at the same step, and only rank 0 reports it. A stop request (a signal)
  on any rank is agreed on every step, so all ranks stop after the same step.
- Rank 0 alone writes the run directory; the others wait for it at barriers.

World size 1 (a plain `infogan train`) makes every collective here a no-op.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from infogan.errors import InfoGANError
from infogan.runtime import DistributedConfig

T = TypeVar("T")
RESTART_VARIABLE = "TORCHELASTIC_RESTART_COUNT"
COLLECTIVE_TIMEOUT = timedelta(minutes=30)  # a rank that hangs this long fails the group


@dataclass(frozen=True)
class World:
    """This process's place in the group of training processes: rank (0 writes the run
    directory), size (the world size), local_rank (which GPU on its machine), local_size
    (ranks on this machine) and restart (torchrun's restart count, 0 at first). The default is
    one process alone, for which every collective is a no-op."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    restart: int = 0

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> World:
        """The world torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK,
        LOCAL_WORLD_SIZE, TORCHELASTIC_RESTART_COUNT), or one process when it is not set."""
        env = os.environ if environ is None else environ
        if "WORLD_SIZE" not in env:
            return cls()
        try:
            size = int(env["WORLD_SIZE"])
            values = {
                "rank": int(env.get("RANK", "0")),
                "local_rank": int(env.get("LOCAL_RANK", "0")),
                "local_size": int(env.get("LOCAL_WORLD_SIZE", str(size))),
                "restart": int(env.get(RESTART_VARIABLE, "0")),
            }
        except ValueError:
            raise InfoGANError(
                "RANK, WORLD_SIZE, LOCAL_RANK or LOCAL_WORLD_SIZE is not a whole number; launch with torchrun"
            ) from None
        if size < 1 or not 0 <= values["rank"] < size or not 0 <= values["local_rank"] < values["local_size"]:
            raise InfoGANError(f"the launcher's RANK / WORLD_SIZE / LOCAL_RANK do not fit together: {values}")
        return cls(size=size, **values)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        return _ranks(self.size)

    # -- batches ----------------------------------------------------------------------------

    def share(self, batch_size: int) -> int:
        """This rank's share of a global batch, or an error when it does not split evenly."""
        if batch_size % self.size:
            low, high = batch_size - batch_size % self.size, batch_size + self.size - batch_size % self.size
            raise InfoGANError(
                f"optim.batch_size {batch_size} (the global batch) does not split evenly across {self.size} ranks; "
                f"use a multiple of {self.size}, e.g. {low or high} or {high}"
            )
        share = batch_size // self.size
        if share < 2:
            raise InfoGANError(
                f"optim.batch_size {batch_size} leaves {share} image per rank on {self.size} ranks; batch norm "
                f"needs 2 or more per rank: use optim.batch_size {2 * self.size} or more, or fewer ranks"
            )
        return share

    def rows(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of `batch_size`."""
        share = self.share(batch_size)
        return slice(self.rank * share, (self.rank + 1) * share)

    def device(self, device: torch.device) -> torch.device:
        """The device this rank trains on: on CUDA the GPU of its local rank, else `device`."""
        if self.size == 1 or device.type != "cuda":
            return device
        if device.index is not None:
            raise InfoGANError(
                f"--device {device} names one GPU, but {self.size} ranks train and each takes the GPU of its "
                "LOCAL_RANK; use --device cuda (or auto), and CUDA_VISIBLE_DEVICES to choose the GPUs"
            )
        count = torch.cuda.device_count()
        if self.local_size > count:
            raise InfoGANError(
                f"torchrun started {self.local_size} ranks on this machine, but it has {count} CUDA GPU(s): "
                f"one rank per GPU, so use --nproc-per-node {count} (or --device cpu)"
            )
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    # -- collectives ------------------------------------------------------------------------

    def barrier(self) -> None:
        """Wait until every rank gets here (a CPU all-reduce, so it never waits for a GPU)."""
        if self.size > 1:
            dist.all_reduce(torch.zeros(1))

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true on any rank (every rank must ask)."""
        if self.size == 1:
            return flag
        value = torch.tensor([float(flag)])
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` summed over the ranks, in place (and returned)."""
        if self.size > 1:
            dist.all_reduce(tensor)
        return tensor

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Replace the gradients of `params` by their mean over the ranks, with one all-reduce
        per dtype. Parameters without a gradient are left alone: every rank runs the same
        step, so the same ones have none everywhere (Adam then skips them on every rank)."""
        if self.size == 1:
            return
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for param in params:
            if param.grad is not None:
                by_dtype.setdefault(param.grad.dtype, []).append(param.grad)
        for grads in by_dtype.values():
            _average_flat(grads, self.size)

    def average_batch_norm_statistics(self, modules: Iterable[nn.Module]) -> None:
        """Average every batch norm's running mean and variance over the ranks, in place."""
        if self.size == 1:
            return
        buffers = [
            buffer
            for module in modules
            for layer in module.modules()
            if isinstance(layer, _BatchNorm) and layer.track_running_stats
            for buffer in (layer.running_mean, layer.running_var)
        ]
        if buffers:
            _average_flat(buffers, self.size)

    def check_same(self, modules: Iterable[nn.Module], what: str) -> None:
        """Raise when the ranks' parameters differ (they never should: every rank applies the
        same averaged gradients); a float64 checksum per rank, compared exactly."""
        if self.size == 1:
            return
        params = [p for module in modules for p in module.parameters()]
        weights = torch.arange(1, len(params) + 1, dtype=torch.float64)
        local = sum(w * p.detach().double().sum().cpu() for w, p in zip(weights, params))
        sums = [torch.zeros((), dtype=torch.float64) for _ in range(self.size)]
        dist.all_gather(sums, torch.as_tensor(local, dtype=torch.float64))
        if any(not torch.equal(s, sums[0]) for s in sums):
            raise mark_every_rank(
                InfoGANError(
                    f"the ranks' {what} differ (checksums {[float(s) for s in sums]}); the ranks fell out of step. "
                    "This is a bug: please report it with the run's config.yaml"
                )
            )

    def from_main(self, work: Callable[[], T]) -> T:
        """`work()` run on rank 0 alone and its result handed to every rank (by pickling: keep
        it small). An InfoGANError there is raised on every rank."""
        if self.size == 1:
            return work()
        payload: list = [None]
        error: InfoGANError | None = None
        if self.is_main:
            try:
                payload = [("ok", work())]
            except InfoGANError as exc:
                error, payload = exc, [("error", str(exc))]
        dist.broadcast_object_list(payload, src=0, device=torch.device("cpu"))
        kind, value = payload[0]
        if kind == "error":
            raise mark_every_rank(error or InfoGANError(value))
        return value

    def on_every_rank(self, work: Callable[[], T]) -> T:
        """`work()` run on every rank; when it fails on any rank, every rank raises that error
        (the lowest failing rank's, naming it), so none waits for a rank that has given up."""
        if self.size == 1:
            return work()
        result, error = None, None
        try:
            result = work()
        except InfoGANError as exc:
            error = exc
        problems: list = [None] * self.size
        dist.all_gather_object(problems, None if error is None else str(error))
        for rank, text in enumerate(problems):
            if text is not None:  # this rank's own error keeps its type; the others get its text
                own = error if rank == self.rank else None
                raise mark_every_rank(own or InfoGANError(text if rank == 0 else f"rank {rank}: {text}"))
        return result


def mark_every_rank(exc: InfoGANError) -> InfoGANError:
    """Mark an error as raised by every rank at once, so that only rank 0 reports it."""
    exc.every_rank = True
    return exc


def reports_error(exc: BaseException, world: World) -> bool:
    """Whether this rank prints `exc`: rank 0 always, the others unless every rank raised it."""
    return world.is_main or not getattr(exc, "every_rank", False)


def _average_flat(tensors: list[torch.Tensor], size: int) -> None:
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat.div_(size)
    offset = 0
    for tensor in tensors:
        count = tensor.numel()
        tensor.copy_(flat[offset : offset + count].view_as(tensor))
        offset += count


@contextmanager
def process_group(world: World):
    """Start the process group for `world` (from torchrun's environment: MASTER_ADDR,
    MASTER_PORT) and end it afterwards; nothing for one process. Gloo carries CPU tensors and
    NCCL CUDA ones (each collective picks by its tensors' device)."""
    if world.size == 1:
        yield world
        return
    if not dist.is_available():
        raise InfoGANError("this PyTorch build has no torch.distributed; install one that has to train on many ranks")
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT, rank=world.rank, world_size=world.size)
    try:
        yield world
    finally:
        # Without this, objects the collectives left in reference cycles are freed during the
        # interpreter's teardown, where gloo aborts the process ("terminate called without an
        # active exception"): benchmarks/torchrun_teardown.py, results in distributed-mnist/.
        gc.collect()
        dist.destroy_process_group()


def announce(world: World, text: str) -> None:
    """Print `text` to stderr on rank 0 only (one line for the whole world)."""
    if world.is_main:
        print(text, file=sys.stderr, flush=True)


def resume_notes(saved: DistributedConfig, now: DistributedConfig, batch_size: int) -> list[str]:
    """What a resume on another world size (or batch-norm mode) changes, for the log."""
    before, after = _normalised_over(saved, batch_size), _normalised_over(now, batch_size)
    if saved.world_size == now.world_size:
        if before == after:
            return []
        return [
            f"note: batch norm now normalises over {after} (before: {before}); the run will not be bit-identical "
            "to an uninterrupted one"
        ]
    split = (
        "one process takes all of it"
        if now.world_size == 1
        else (f"each rank now takes {batch_size // now.world_size} of every {batch_size}")
    )
    norm = f"batch norm normalises over {after}" + ("" if before == after else f" (before: {before})")
    return [
        f"note: resuming on {_ranks(now.world_size)} a run that trained on {_ranks(saved.world_size)} so far: the "
        f"weights, the optimiser state and the global batches (images and latents) go on unchanged and {split}; "
        f"{norm}, and sums run in another order, so the run will not be bit-identical to one that stayed on "
        f"{_ranks(saved.world_size)}"
    ]


def _ranks(size: int) -> str:
    return "1 process" if size == 1 else f"{size} ranks"


def _normalised_over(config: DistributedConfig, batch_size: int) -> str:
    if config.world_size == 1 or config.sync_batchnorm:
        return f"the whole batch of {batch_size}"
    return f"each rank's {batch_size // config.world_size} images"


# -- batch norm over the global batch ---------------------------------------------------------


def synchronise_batch_norm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every batch norm in `module` (in place below the top) normalising over the global batch:
    `torch.nn.SyncBatchNorm` on CUDA, `GlobalBatchNorm` elsewhere. Parameters and buffers are
    the same tensors (optimisers keep working) and state_dict keys do not change."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        return GlobalBatchNorm.like(module)
    for name, child in module.named_children():
        replaced = synchronise_batch_norm(child, device)
        if replaced is not child:
            setattr(module, name, replaced)
    return module


class GlobalBatchNorm(_BatchNorm):
    """Batch norm whose training statistics cover every rank's share of the batch, on any
    device (PyTorch's SyncBatchNorm runs on GPUs only). Mean and biased variance come from two
    all-reduces that autograd differentiates (their backward is an all-reduce of the
    gradients), so every rank's input gradient is that of the sum of the ranks' losses, as with
    SyncBatchNorm. Running statistics follow BatchNorm's rule with the global count."""

    @classmethod
    def like(cls, source: _BatchNorm) -> GlobalBatchNorm:
        layer = cls(source.num_features, source.eps, source.momentum, source.affine, source.track_running_stats)
        layer.weight, layer.bias = source.weight, source.bias
        layer.running_mean, layer.running_var = source.running_mean, source.running_var
        layer.num_batches_tracked = source.num_batches_tracked
        layer.train(source.training)
        return layer

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected 2D or more input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        shape = [1, -1] + [1] * (input.dim() - 2)
        dims = [0, *range(2, input.dim())]
        x = input.float()
        local_count = x.new_full((1,), float(x.numel() // x.shape[1]))
        totals = _SumAcrossRanks.apply(torch.cat([x.sum(dims), local_count]))
        count = totals[-1].detach()
        mean = totals[:-1] / count
        centred = x - mean.view(shape)
        var = _SumAcrossRanks.apply((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            self._update_running_statistics(mean.detach(), var.detach(), float(count))
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(input.dtype)

    @torch.no_grad()
    def _update_running_statistics(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * (count / max(count - 1.0, 1.0))
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)


class _SumAcrossRanks(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


__all__ = [
    "DistributedConfig",
    "GlobalBatchNorm",
    "World",
    "announce",
    "mark_every_rank",
    "process_group",
    "reports_error",
    "resume_notes",
    "synchronise_batch_norm",
]
