"""The training step as a CUDA graph: after a few eager steps, one step is captured and every
later step replays it, launching all of its kernels with one call.

At the paper's MNIST sizes a GPU finishes each kernel of a step sooner than Python can launch
the next, so the eager step is bound by launch overhead; a replay removes it. What a step
computes does not change: the same `train_step`, on copies of the batch and latents placed in
the tensors the graph reads.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from infogan.core.contrastive import Pairs
from infogan.core.latent import Latent
from infogan.errors import InfoGANError
from infogan.training.step import Stats, StepContext, train_step

WARMUP_STEPS = 3  # eager steps before capture: they create Adam's state and pick cuDNN kernels


class GraphedStep:
    """`train_step(ctx, real, latent)` replayed from a CUDA graph.

    The optimisers must be capturable (`build_optimizers(..., capturable=True)`) and the
    context's autocast must not cache casts (`StepContext(..., graph_safe=True)`). Call `reset`
    whenever optimiser state tensors are replaced (loading a checkpoint) or a learning rate
    changes: both are baked into the captured graph.
    """

    def __init__(self, ctx: StepContext) -> None:
        device = next(ctx.generator.parameters()).device
        if device.type != "cuda":
            raise InfoGANError(f"CUDA graphs need the networks on a CUDA GPU, not {device.type}; use --device cuda")
        if not ctx.graph_safe:
            raise ValueError("GraphedStep needs a StepContext made with graph_safe=True")
        for name, optimizer in ctx.optimizers.named().items():
            if not all(group.get("capturable") for group in optimizer.param_groups):
                raise ValueError(f"optimiser {name!r} is not capturable; build it with capturable=True")
        self.ctx = ctx
        self.reset()

    def reset(self) -> None:
        """Forget the captured graph; the next steps run eagerly again, then capture anew."""
        self._graph: torch.cuda.CUDAGraph | None = None
        self._eager_steps = 0
        self._inputs: list[torch.Tensor] = []  # the graph's own copies: batch, latents, draws
        self._names: list[str] = []
        self._layout = (False, False)  # whether the captured step takes transform draws, contrastive pairs
        self._stats: torch.Tensor | None = None  # the step's statistics stacked, in the graph's memory

    @property
    def captured(self) -> bool:
        return self._graph is not None

    def __call__(
        self, real: torch.Tensor, latent: Latent, draws: torch.Tensor | None = None, pairs: Pairs | None = None
    ) -> Stats:
        inputs = _flatten(real, latent, draws, pairs)
        if self._graph is None:
            if self._eager_steps < WARMUP_STEPS:
                self._eager_steps += 1
                return _on_side_stream(lambda: train_step(self.ctx, real, latent, draws, pairs))
            self._layout = (draws is not None, pairs is not None)
            self._capture(inputs)
        else:
            self._check_shapes(inputs)
            for static, fresh in zip(self._inputs, inputs, strict=True):
                static.copy_(fresh)
        self._graph.replay()
        stats = self._stats.clone()  # the graph overwrites its output on the next replay
        return dict(zip(self._names, stats.unbind(), strict=True))

    def _check_shapes(self, inputs: list[torch.Tensor]) -> None:
        expected = [t.shape for t in self._inputs]
        got = [t.shape for t in inputs]
        if got != expected:
            raise ValueError(
                f"the captured step takes a batch of shape {tuple(expected[0])} and latents (and transform "
                f"draws, if it was recorded with them) of that batch size; got a batch of {tuple(got[0])} "
                f"and {len(got) - 1} other inputs for {len(expected) - 1}. Call reset() to record a new step"
            )

    def _capture(self, inputs: list[torch.Tensor]) -> None:
        """Record one step on copies of the step's inputs (recording runs nothing)."""
        self._inputs = [t.clone() for t in inputs]
        real, latent, draws, pairs = _unflatten(self._inputs, *self._layout)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            stats = train_step(self.ctx, real, latent, draws, pairs)
            self._names = list(stats)
            self._stats = torch.stack(list(stats.values()))
        self._graph = graph


def _latent_tensors(latent: Latent) -> list[torch.Tensor]:
    return [latent.noise, latent.categorical, latent.continuous]


def _flatten(real: torch.Tensor, latent: Latent, draws: torch.Tensor | None, pairs: Pairs | None) -> list[torch.Tensor]:
    inputs = [real, *_latent_tensors(latent)]
    if draws is not None:
        inputs.append(draws)
    if pairs is not None:
        inputs += [*_latent_tensors(pairs.first), *_latent_tensors(pairs.second), pairs.shared]
    return inputs


def _unflatten(
    inputs: list[torch.Tensor], has_draws: bool, has_pairs: bool
) -> tuple[torch.Tensor, Latent, torch.Tensor | None, Pairs | None]:
    real, latent, rest = inputs[0], Latent(*inputs[1:4]), inputs[4:]
    draws = rest.pop(0) if has_draws else None
    pairs = Pairs(Latent(*rest[0:3]), Latent(*rest[3:6]), rest[6]) if has_pairs else None
    return real, latent, draws, pairs


def _on_side_stream(work: Callable[[], Stats]) -> Stats:
    """Run `work` on a fresh stream, as CUDA graph warm-up steps must, then rejoin."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        result = work()
    torch.cuda.current_stream().wait_stream(stream)
    return result
