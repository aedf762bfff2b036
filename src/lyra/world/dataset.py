"""``WorldDataset``: examples over fixed, disjoint seed ranges.

================  =====================  =====================================================
split             seeds                  use
================  =====================  =====================================================
``test``          [0, 1 000)             held-out evaluation; never read by any training code
``val``           [1 000, 2 000)         validation during training
``train``         [1 000 000, 2^31 - 1)  training (practically unlimited)
================  =====================  =====================================================

Item ``i`` of a split is ``make_example(first_seed + i, ...)``: a deterministic function of the seed.
With ``render=False`` items are :class:`~lyra.world.sample.WorldSample` (world and cameras only, cheap):
let data-loader workers generate them and render whole batches on the GPU with
:func:`~lyra.world.sample.render_samples`::

    loader = DataLoader(WorldDataset("train", render=False), batch_size=16, collate_fn=list, num_workers=12)
    for samples in loader:
        examples = render_samples(samples, "cuda")
Static and dynamic datasets use the same seed ranges (a dynamic world of seed ``s`` is a different
world from the static one: motion is drawn from the same generator stream). ``style="photo"`` gives the
photo-style version of each world (:mod:`lyra.world.photo`); the default ``"classic"`` is what every benchmark reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from lyra.errors import ConfigError
from lyra.geometry.cameras import Cameras
from lyra.world.presets import WorldPreset, get_preset
from lyra.world.sample import Example, WorldSample, make_example, sample_world

SPLITS: dict[str, tuple[int, int]] = {
    "test": (0, 1_000),
    "val": (1_000, 2_000),
    "train": (1_000_000, 2**31 - 1),
}


def split_seeds(split: str) -> range:
    """The seeds of ``split`` as a ``range``."""
    try:
        lo, hi = SPLITS[split]
    except KeyError:
        raise ConfigError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}") from None
    return range(lo, hi)


class WorldDataset(Dataset):
    """Examples of one split (see the module doc). ``size`` limits it to the first ``size`` seeds;
    ``render=False`` yields unrendered :class:`WorldSample` items; ``style``: ``"classic"`` or ``"photo"``."""

    def __init__(self, split: str, preset: str | WorldPreset = "tiny", dynamic: bool = False,
                 size: int | None = None, family: str | None = None, render: bool = True,
                 style: str = "classic") -> None:
        self.seeds = split_seeds(split)
        if size is not None:
            if not 0 < size <= len(self.seeds):
                raise ConfigError(f"split {split!r} holds {len(self.seeds)} seeds; size must be in "
                                  f"[1, {len(self.seeds)}], got {size}")
            self.seeds = self.seeds[:size]
        self.split = split
        self.preset = get_preset(preset)
        self.dynamic = dynamic
        self.family = family
        self.render = render
        self.style = style

    def __len__(self) -> int:
        return len(self.seeds)

    def seed(self, index: int) -> int:
        return self.seeds[index]

    def __getitem__(self, index: int) -> Example | WorldSample:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        if not self.render:
            return sample_world(self.seeds[index], self.preset, self.dynamic, self.family, style=self.style)
        return make_example(self.seeds[index], self.preset, self.dynamic, self.family, style=self.style)


def collate_examples(examples: Sequence[Example]) -> dict:
    """Stack examples into a batch: tensors gain a leading ``B``; ``cameras`` becomes ``[B, 6, T]``.

    Use as ``DataLoader(dataset, batch_size=B, collate_fn=collate_examples)``.
    """
    first = examples[0]
    cams = Cameras(torch.stack([e.cameras.K for e in examples]), torch.stack([e.cameras.c2w for e in examples]),
                   first.cameras.width, first.cameras.height)
    out = {
        "image": torch.stack([e.image for e in examples]),
        "depth": torch.stack([e.depth for e in examples]),
        "videos": torch.stack([e.videos for e in examples]),
        "depths": torch.stack([e.depths for e in examples]),
        "cameras": cams,
        "seed": torch.tensor([e.seed for e in examples]),
        "family": [e.family for e in examples],
        "center_depth": torch.tensor([e.center_depth for e in examples]),
    }
    if first.times is not None:
        out["times"] = torch.stack([e.times for e in examples])
    return out
