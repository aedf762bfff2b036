"""Procedural 3D worlds with exact ground truth: the embedded training and evaluation domain.

* :mod:`~lyra.world.scene` — analytic primitives, materials, lights, motion (world -y is up)
* :mod:`~lyra.world.families` — indoor and outdoor generators; :mod:`~lyra.world.dynamic` — motion
* :mod:`~lyra.world.render` — batched ray casting (CPU/CUDA): RGB, z-depth, object ids, anti-aliased
* :mod:`~lyra.world.sample` — :class:`Example`, :func:`make_example` (input camera + six trajectories),
  :func:`load_example` (the same, cropped to multiples of 16 pixels)
* :mod:`~lyra.world.dataset` — :class:`WorldDataset` over fixed, disjoint seed splits
* :mod:`~lyra.world.export` — write an example to a folder (PNG, 16-bit depth, JSON, MP4)
"""

from lyra.world.dataset import SPLITS, WorldDataset, collate_examples, split_seeds
from lyra.world.families import FAMILIES
from lyra.world.presets import PRESETS, WorldPreset, get_preset
from lyra.world.render import RenderResult, render, render_depth, render_views
from lyra.world.sample import (
    Example,
    WorldSample,
    crop_example,
    load_example,
    make_example,
    make_examples,
    render_samples,
    sample_world,
)
from lyra.world.scene import Scene, SceneBatch

__all__ = [
    "FAMILIES", "PRESETS", "SPLITS", "Example", "RenderResult", "Scene", "SceneBatch", "WorldDataset",
    "WorldPreset", "WorldSample", "collate_examples", "crop_example", "get_preset", "load_example", "make_example",
    "make_examples", "render", "render_depth", "render_samples", "render_views", "sample_world", "split_seeds",
]
