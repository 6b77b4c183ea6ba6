"""Training batches from images held in memory, in an order fixed by (seed, step), and each
rank's share of them when several train together."""

from __future__ import annotations

import torch

from infogan.errors import InfoGANError


class InMemoryBatches:
    """Batches drawn from in-memory images, in an order that depends only on (seed, step).

    `images` is a uint8 tensor (N, C, H, W), moved to `device` once, or any object with
    `len()` and `gather(rows) -> uint8 tensor` (such as bit-packed dSprites, unpacked per batch).
    Each epoch is a fresh permutation drawn from a generator seeded by the seed and the epoch,
    so a resumed run sees exactly the batches an uninterrupted one would.

    `batch_size` is the global batch; with `world_size` ranks, rank `rank` gets its rows
    `rank * share : (rank + 1) * share` of it (share = batch_size / world_size): the ranks
    split the batch one process would take at that step, none sees another's images, and the
    global batches do not depend on the world size.
    """

    def __init__(
        self,
        images,
        batch_size: int,
        seed: int,
        image_range: tuple[float, float],
        device: str | torch.device = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size % world_size or not 0 <= rank < world_size:
            raise ValueError(f"a batch of {batch_size} cannot be split into {world_size} equal shares for rank {rank}")
        device = torch.device(device)
        if isinstance(images, torch.Tensor):
            if images.dtype != torch.uint8 or images.ndim != 4:
                raise InfoGANError("training images must be a uint8 tensor of shape (N, C, H, W)")
            stored = images.to(device)
            self._gather = lambda rows: stored.index_select(0, rows)
            self._order_device = device
        else:
            self._gather = lambda rows: images.gather(rows).to(device)
            self._order_device = torch.device("cpu")
        self.count = len(images)
        if self.count < batch_size:
            raise InfoGANError(
                f"the data set has {self.count} images, fewer than the batch size {batch_size}; "
                "lower optim.batch_size or use more images"
            )
        self.batch_size = batch_size
        self.share = batch_size // world_size
        self.offset = rank * self.share
        self.seed = seed
        self.low, self.high = image_range
        self.per_epoch = self.count // batch_size
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.long)

    def batch(self, step: int) -> torch.Tensor:
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            rng = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(self.count, generator=rng).to(self._order_device)
            self._epoch = epoch
        start = index * self.batch_size + self.offset
        rows = self._order[start : start + self.share]
        pixels = self._gather(rows).float()
        return pixels * ((self.high - self.low) / 255.0) + self.low
