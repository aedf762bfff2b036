"""Batch sources whose position can be saved and restored, for exact resume.

The trainer reads batches from a *stateful iterable*: an object with ``__iter__`` (an endless stream
of batches), ``state_dict()`` and ``load_state_dict(state)``. Two ready-made ones:

* :class:`ResumableLoader` — a map-style ``Dataset`` in shuffled mini-batches (a new seeded permutation
  each epoch), sharded over processes, optionally with worker processes. Its state is
  ``(epoch, batches consumed)``.
* :class:`IndexedBatches` — a function ``make_batch(index) -> batch`` of a global batch index (e.g. a
  procedural data generator seeded by the index). Its state is the next index.

Randomness inside a dataset should come from the item index (or an explicit seed), not from the
global RNG of a worker process, for the data to be reproducible across resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import torch
from torch.utils.data import DataLoader, Dataset


@runtime_checkable
class StatefulBatches(Protocol):
    """An endless iterable of batches that can save and restore its position."""

    def __iter__(self) -> Iterator[Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ResumableLoader:
    """Shuffled mini-batches of a map-style dataset, endlessly, with a restorable position.

    Args:
        dataset: map-style dataset (``__len__``, ``__getitem__``).
        batch_size: items per batch *per process*.
        seed: seed of the per-epoch permutations (epoch ``e`` uses ``seed + e``).
        shuffle: permute each epoch (else the natural order).
        drop_last: drop the incomplete last batch of an epoch (default True: equal batch sizes).
        num_workers, collate_fn, pin_memory: as for ``torch.utils.data.DataLoader``.
        process_index, num_processes: this process's shard (items ``perm[rank::world]``).
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = True, num_workers: int = 0, collate_fn: Callable | None = None,
                 pin_memory: bool = False, process_index: int = 0, num_processes: int = 1) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory
        self.process_index = process_index
        self.num_processes = num_processes
        self.epoch = 0
        self.position = 0  # batches of the current epoch already handed out
        if self.batches_per_epoch() == 0:
            raise ValueError(
                f"dataset of {len(dataset)} items gives no batch of {batch_size} on each of {num_processes} processes"
            )

    def set_shard(self, process_index: int, num_processes: int) -> None:
        """Take shard ``process_index`` of ``num_processes`` (the trainer calls this)."""
        self.process_index, self.num_processes = process_index, num_processes

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        mine = order[self.process_index::self.num_processes]
        per_rank = n // self.num_processes  # equal share on every process
        mine = mine[:per_rank]
        batches = [mine[i:i + self.batch_size] for i in range(0, len(mine), self.batch_size)]
        if batches and self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def batches_per_epoch(self) -> int:
        return len(self._epoch_batches(0))

    def __iter__(self) -> Iterator[Any]:
        while True:
            batches = self._epoch_batches(self.epoch)[self.position:]
            if batches:
                # A private generator: creating the loader's iterator must not draw from the global RNG
                # (a resumed run creates one more iterator than an uninterrupted run).
                gen = torch.Generator().manual_seed(self.seed + self.epoch)
                loader = DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers,
                                    collate_fn=self.collate_fn, pin_memory=self.pin_memory, generator=gen)
                for batch in loader:
                    self.position += 1
                    yield batch
            self.epoch += 1
            self.position = 0

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.seed = int(state.get("seed", self.seed))


class IndexedBatches:
    """Batches ``make_batch(index)`` for ``index = start, start + stride, ...`` (endless).

    With several processes, process ``r`` of ``w`` reads indices ``w·k + r``, so every global index is
    used exactly once. The state is the next local counter ``k``.
    """

    def __init__(self, make_batch: Callable[[int], Any], start: int = 0, process_index: int = 0,
                 num_processes: int = 1) -> None:
        self.make_batch = make_batch
        self.counter = start
        self.process_index = process_index
        self.num_processes = num_processes

    def set_shard(self, process_index: int, num_processes: int) -> None:
        self.process_index, self.num_processes = process_index, num_processes

    def __iter__(self) -> Iterator[Any]:
        while True:
            index = self.counter * self.num_processes + self.process_index
            batch = self.make_batch(index)
            self.counter += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"counter": self.counter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counter = int(state["counter"])
