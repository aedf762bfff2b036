"""What the image and the video pipelines share: the student loader and the stage reporter."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lyra.errors import WeightsError

__all__ = ["ProgressFn", "StudentWeightsMissing", "load_decoder", "reporter"]

ProgressFn = Callable[[str, float], None]


class StudentWeightsMissing(WeightsError):
    """The student (3DGS decoder) weights of a preset are not there."""


def load_decoder(path: Path, device: torch.device, dtype: torch.dtype) -> tuple[Any, dict[str, Any]]:
    """A student export folder or an official decoder file → (LatentDecoder in eval mode, its meta)."""
    from lyra.student import LatentDecoder
    from lyra.student.checkpoint import load_official_checkpoint

    if path.is_dir():
        if not (path / "student.json").is_file():
            raise StudentWeightsMissing(f"{path}: no student.json; not a student export (train one with `lyra "
                                        "train student`, or pass the official decoder file)")
        model = LatentDecoder.from_pretrained(path, device=device, dtype=dtype)
        return model, model.meta
    model = load_official_checkpoint(path, "official", device=device).to(dtype)
    return model, {"preset": "official", "tokenizer": "official", "single_view": False}


def reporter(progress: bool | ProgressFn) -> ProgressFn:
    """``progress`` as a ``(stage, seconds)`` callback: itself if callable, a stderr line per stage if true, else
    a no-op."""
    if callable(progress):
        return progress
    if progress:
        def show(stage: str, seconds: float) -> None:
            print(f"  {stage:<14} {seconds:8.2f} s", file=sys.stderr, flush=True)

        return show
    return lambda stage, seconds: None
