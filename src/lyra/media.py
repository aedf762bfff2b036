"""Writing videos and image sequences (packaged ffmpeg through ``imageio-ffmpeg``; no system ffmpeg)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lyra.errors import OutputPathError
from lyra.fileio import atomic_dir, atomic_path

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".gif")


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float image(s) in [0, 1] ``[..., H, W, 3]`` → uint8 numpy (clamped, rounded)."""
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu().numpy()
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_video(frames: Iterable[np.ndarray | torch.Tensor], path: str | os.PathLike, fps: float = 24.0) -> Path:
    """Write frames ``[H, W, 3]`` (float [0,1] or uint8) to a video file, atomically.

    The format follows the extension (``.mp4``/``.mov``/``.mkv`` as H.264, ``.gif``). Frames are
    consumed lazily, so a generator of rendered frames streams to disk.
    """
    import imageio.v2 as imageio

    p = Path(path)
    if p.suffix.lower() not in VIDEO_EXTENSIONS:
        raise OutputPathError(f"{p}: unknown video extension; use one of {', '.join(VIDEO_EXTENSIONS)}")
    with atomic_path(p) as tmp:
        if p.suffix.lower() == ".gif":
            writer = imageio.get_writer(tmp, mode="I", duration=1000.0 / fps, loop=0)
        else:
            writer = imageio.get_writer(tmp, fps=fps, codec="libx264", quality=8, macro_block_size=2,
                                        ffmpeg_log_level="error", pixelformat="yuv420p")
        try:
            for frame in frames:
                writer.append_data(to_uint8(frame))
        finally:
            writer.close()
    return p


def write_image(image: np.ndarray | torch.Tensor, path: str | os.PathLike) -> Path:
    """Write one image ``[H, W, 3]`` (float [0,1] or uint8) atomically; format from the extension."""
    p = Path(path)
    with atomic_path(p) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp, format=Image.registered_extensions().get(p.suffix.lower()))
    return p


def write_frames(frames: Iterable[np.ndarray | torch.Tensor], folder: str | os.PathLike,
                 pattern: str = "frame_{:05d}.png") -> Path:
    """Write frames as numbered PNGs into a new folder (created atomically: all frames or nothing)."""
    with atomic_dir(folder) as tmp:
        for k, frame in enumerate(frames):
            Image.fromarray(to_uint8(frame)).save(tmp / pattern.format(k))
    return Path(folder)
