"""Progressive training stages of the student, as a config list (LYRA_FACTS, "Progressive stages").

A :class:`Stage` says, until which global step it runs (``until``: an absolute step, or a fraction of the
run's total steps when a float in (0, 1]), at which resolution the Gaussians are rendered and supervised,
how many frames per trajectory are used, how many trajectories each sample contributes, which loss terms are
on, whether the Gaussians are pruned, and how many target frames per trajectory are rendered each step and
how they are drawn.

What the fields mean here:

* ``frames`` (``1 + 8k``, ``None`` = all of the shard's): the first ``frames`` frames of every trajectory and
  the first ``1 + (frames − 1)/8`` latent frames. The tokenizer is causal, so these latents are exactly the
  latents of the shorter video.
* ``height`` × ``width`` (``None`` = the shard's): the render and supervision resolution. The decoder always
  reads the shard's latents (and predicts Gaussians in 3D); the targets are area-downsampled (depth:
  nearest) to the stage's size. Lyra trains its early stages on lower-resolution data; here only the
  rendering and the loss get cheaper.
* ``views``: trajectories per sample — an int ``n`` (a random subset of ``n`` trajectories per step; all of
  them when ``n`` is the shard's count) or ``[lo, hi]``: the count is drawn uniformly in ``lo..hi`` per step,
  then a random subset of that size (Lyra's "1–6 trajectories sampled" stage). All samples of a step share it.
* ``target_frames``: frames rendered per selected trajectory per step, drawn without replacement with
  probability ``p(f) ∝ 1 + end_weight · f / (T − 1)`` for frame ``f = 0 … T − 1``: ``end_weight = 0`` is
  uniform; Lyra's multi-trajectory stage weights the target frames towards the trajectory ends — the frames
  farthest from the input view, where the decoder must fuse the most — and the default list uses
  ``end_weight = 2`` there (the last frame 3× as likely as the input frame).
* ``losses``: a subset of ``mse, perceptual, depth, opacity``; the opacity term belongs with pruning.
* ``prune_ratio``: drop this fraction of the least opaque Gaussians before rendering (Lyra: 0.8 → keep 20 %).

Lists load from JSON (:func:`load_stages`): ``{"stages": [{...}, ...]}`` or a bare list. Presets:
:data:`LYRA_STAGES` (the paper's static schedule) and ``configs/student_tiny.json``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from lyra.distill.losses import LOSS_NAMES
from lyra.errors import ConfigError, InputFileError

__all__ = ["LYRA_STAGES", "Stage", "StagePlan", "frame_weights", "load_stages", "sample_frames", "sample_views"]


@dataclass(frozen=True)
class Stage:
    """One training stage (see the module docstring)."""

    name: str
    until: float  # end step: int = absolute; float in (0, 1] = fraction of the total steps
    height: int | None = None
    width: int | None = None
    frames: int | None = None
    views: int | tuple[int, int] = 6
    losses: tuple[str, ...] = ("mse", "perceptual", "depth")
    prune_ratio: float | None = None
    target_frames: int = 4
    end_weight: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.views, list):
            object.__setattr__(self, "views", tuple(self.views))
        object.__setattr__(self, "losses", tuple(self.losses))
        if isinstance(self.until, float) and not 0.0 < self.until <= 1.0:
            raise ConfigError(f"stage {self.name!r}: a fractional 'until' must lie in (0, 1], got {self.until}")
        if isinstance(self.until, int) and self.until < 1:
            raise ConfigError(f"stage {self.name!r}: 'until' must be a positive step, got {self.until}")
        if (self.height is None) != (self.width is None) or (self.height is not None and
                                                              (self.height < 1 or self.width < 1)):
            raise ConfigError(f"stage {self.name!r}: give both height and width (positive) or neither")
        if self.frames is not None and (self.frames < 1 or (self.frames - 1) % 8):
            raise ConfigError(f"stage {self.name!r}: frames must be 1 + 8k, got {self.frames}")
        lo, hi = self.view_range
        if not 1 <= lo <= hi:
            raise ConfigError(f"stage {self.name!r}: views must be >= 1 (and lo <= hi), got {self.views}")
        bad = set(self.losses) - set(LOSS_NAMES)
        if bad or not self.losses:
            raise ConfigError(f"stage {self.name!r}: losses must be a non-empty subset of {', '.join(LOSS_NAMES)}, "
                              f"got {list(self.losses)}")
        if self.prune_ratio is not None and not 0.0 <= self.prune_ratio < 1.0:
            raise ConfigError(f"stage {self.name!r}: prune_ratio must lie in [0, 1), got {self.prune_ratio}")
        if self.target_frames < 1:
            raise ConfigError(f"stage {self.name!r}: target_frames must be >= 1")
        if self.end_weight < 0:
            raise ConfigError(f"stage {self.name!r}: end_weight must be >= 0")

    @property
    def view_range(self) -> tuple[int, int]:
        v = self.views
        if isinstance(v, int):
            return v, v
        if len(v) != 2:
            raise ConfigError(f"stage {self.name!r}: views must be an int or [lo, hi], got {list(v)}")
        return int(v[0]), int(v[1])

    def end_step(self, total_steps: int) -> int:
        """The global step at which this stage ends, for a run of ``total_steps``."""
        if isinstance(self.until, float):
            return max(1, int(math.ceil(self.until * total_steps)))
        return int(self.until)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["losses"] = list(self.losses)
        if isinstance(self.views, tuple):
            d["views"] = list(self.views)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stage:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown stage keys {sorted(unknown)}; known: {', '.join(f.name for f in fields(cls))}")
        if "name" not in d or "until" not in d:
            raise ConfigError(f"a stage needs 'name' and 'until', got {sorted(d)}")
        until = d["until"]
        if isinstance(until, bool) or not isinstance(until, (int, float)):
            raise ConfigError(f"stage {d['name']!r}: 'until' must be a step (int) or a fraction (float)")
        return cls(**d)


@dataclass
class StagePlan:
    """An ordered list of stages; :meth:`at` gives the stage of a 0-based step ``s`` (the one whose end is
    the first > ``s``; past the last end, the last stage continues). Ends must not decrease; a stage whose
    end equals the previous one's is skipped (fractional ends of a very short run can coincide)."""

    stages: list[Stage] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.stages:
            raise ConfigError("a stage list needs at least one stage")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique, got {names}")

    def ends(self, total_steps: int) -> list[int]:
        ends = [s.end_step(total_steps) for s in self.stages]
        if any(b < a for a, b in zip(ends, ends[1:], strict=False)):
            raise ConfigError(f"stage ends must not decrease, got {ends} for {total_steps} steps")
        return ends

    def at(self, step: int, total_steps: int) -> Stage:
        for stage, end in zip(self.stages, self.ends(total_steps), strict=True):
            if step < end:
                return stage
        return self.stages[-1]

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [s.to_dict() for s in self.stages]}

    @classmethod
    def from_obj(cls, obj: Any, source: str = "stage list") -> StagePlan:
        items = obj.get("stages") if isinstance(obj, dict) else obj
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ConfigError(f"{source}: expected {{\"stages\": [{{...}}, ...]}} or a list of stage objects")
        try:
            return cls([Stage.from_dict(i) for i in items])
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None


def load_stages(path: str | os.PathLike) -> StagePlan:
    """Read a stage list from a JSON file (see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"stage list {p} does not exist (see configs/student_tiny.json for an example)")
    try:
        obj = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: not valid JSON ({e})") from None
    return StagePlan.from_obj(obj, source=str(p))


#: Lyra's static schedule (global step at the end of each stage), at the official resolution.
LYRA_STAGES = StagePlan([
    Stage("176x320_17", 10_000, 176, 320, 17),
    Stage("176x320_49", 12_500, 176, 320, 49),
    Stage("352x640_49", 15_000, 352, 640, 49),
    Stage("704x1280_49", 17_500, 704, 1280, 49),
    Stage("704x1280_121", 75_000, 704, 1280, 121),
    Stage("multi_trajectory", 82_000, 704, 1280, 121, views=(1, 6), end_weight=2.0),
    Stage("prune", 83_000, 704, 1280, 121, views=(1, 6), losses=("mse", "perceptual", "depth", "opacity"),
          prune_ratio=0.8, end_weight=2.0),
])


# ----------------------------------------------------------------------------------------------- sampling
def frame_weights(num_frames: int, end_weight: float) -> torch.Tensor:
    """``[T]`` probabilities ``∝ 1 + end_weight · f / (T − 1)`` (uniform for one frame)."""
    if num_frames < 1:
        raise ConfigError("num_frames must be >= 1")
    if num_frames == 1:
        return torch.ones(1, dtype=torch.float64)
    ramp = torch.linspace(0.0, 1.0, num_frames, dtype=torch.float64)
    w = 1.0 + end_weight * ramp
    return w / w.sum()


def sample_views(stage: Stage, available: int, generator: torch.Generator) -> torch.Tensor:
    """Sorted trajectory indices ``[V']`` for one step: a count from the stage's range (clipped to
    ``available``), then a uniformly random subset of that size."""
    lo, hi = stage.view_range
    lo, hi = min(lo, available), min(hi, available)
    count = lo if lo == hi else int(torch.randint(lo, hi + 1, (1,), generator=generator))
    if count == available:
        return torch.arange(available)
    return torch.randperm(available, generator=generator)[:count].sort().values


def sample_frames(stage: Stage, num_frames: int, num_views: int, generator: torch.Generator) -> torch.Tensor:
    """Target frame indices ``[V', F]`` (each row sorted, no repeats) with ``F = min(target_frames, T)``,
    drawn per trajectory with the weights of :func:`frame_weights`."""
    k = min(stage.target_frames, num_frames)
    w = frame_weights(num_frames, stage.end_weight).float()
    rows = [torch.multinomial(w, k, replacement=False, generator=generator).sort().values for _ in range(num_views)]
    return torch.stack(rows)


def describe(stages: Sequence[Stage], total_steps: int) -> str:
    """One line per stage (for logs)."""
    plan = StagePlan(list(stages))
    lines = []
    start = 0
    for s, end in zip(plan.stages, plan.ends(total_steps), strict=True):
        res = f"{s.height}x{s.width}" if s.height else "shard size"
        lines.append(f"{s.name}: steps {start}-{end}, {res}, frames {s.frames or 'all'}, views {s.views}, "
                     f"losses {'+'.join(s.losses)}, prune {s.prune_ratio}, {s.target_frames} target frames "
                     f"(end weight {s.end_weight})")
        start = end
    return "\n".join(lines)
