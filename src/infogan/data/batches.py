"""Training batches from images held in memory, in an order fixed by (seed, step)."""

from __future__ import annotations

import torch

from ..errors import InfoGANError


class InMemoryBatches:
    """Batches drawn from in-memory images, in an order that depends only on (seed, step).

    `images` is a uint8 tensor (N, C, H, W), moved to `device` once, or any object with
    `len()` and `gather(rows) -> uint8 tensor` (such as bit-packed dSprites, unpacked per batch).
    Each epoch is a fresh permutation drawn from a generator seeded by the seed and the epoch,
    so a resumed run sees exactly the batches an uninterrupted one would.
    """

    def __init__(
        self,
        images,
        batch_size: int,
        seed: int,
        image_range: tuple[float, float],
        device: str | torch.device = "cpu",
    ):
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
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        pixels = self._gather(rows).float()
        return pixels * ((self.high - self.low) / 255.0) + self.low
