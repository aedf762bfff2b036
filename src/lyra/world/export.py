"""Write an :class:`~lyra.world.sample.Example` to a folder.

Files (every one written atomically):

====================  ===================================================================================
``input.png``         the input image (8-bit RGB)
``input_depth.png``   its z-depth as 16-bit grey: ``depth = value / units_per_metre`` (stored in
                      ``cameras.json``; ``min(1000, 65535 / max depth)``, i.e. millimetres when the
                      farthest surface is nearer than 65.5 m); 0 = no surface (sky)
``input_depth.npy``   the same depth as float32 metres (``inf`` = sky)
``cameras.json``      seed, family, preset, centre depth, intrinsics, the input camera and the
                      ``[6, T]`` trajectory cameras (OpenCV camera-to-world, world -y up), frame times
``traj{i}_{name}.mp4`` the six trajectory videos (H.264, ``fps`` frames per second), i = 0..5 in the
                      order left, right, up, zoom_out, zoom_in, spiral
====================  ===================================================================================
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lyra.errors import OutputPathError
from lyra.fileio import atomic_path
from lyra.geometry.trajectories import TRAJECTORY_NAMES
from lyra.world.sample import Example

FORMAT = "lyra-world-example"
VERSION = 1


def prepare_output_dir(path: str | os.PathLike) -> Path:
    """Check (and create, if missing) the output folder ``path``; its parent must exist and be writable."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{p}: exists and is not a folder (give a folder to write into)")
    if not p.exists():
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise OutputPathError(f"{p}: its parent folder {parent} does not exist (create it first)")
        if not os.access(parent, os.W_OK):
            raise OutputPathError(f"{p}: cannot create it, folder {parent} is not writable")
        p.mkdir()
    if not os.access(p, os.W_OK):
        raise OutputPathError(f"{p}: folder is not writable")
    return p


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[..., 3, H, W]`` floats in [0, 1] → ``[..., H, W, 3]`` uint8 (rounded)."""
    return (images.detach().float().clamp(0, 1).movedim(-3, -1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def depth_units_per_metre(depth: torch.Tensor) -> float:
    """The 16-bit PNG scale for ``depth`` (see the module doc)."""
    fin = depth[torch.isfinite(depth)]
    far = float(fin.max()) if fin.numel() else 1.0
    return min(1000.0, 65535.0 / max(far, 1e-6))


def depth_to_uint16(depth: torch.Tensor, units_per_metre: float) -> np.ndarray:
    """``[H, W]`` z-depth → uint16 (0 = no surface)."""
    d = depth.detach().float().cpu()
    v = torch.where(torch.isfinite(d), (d * units_per_metre).round().clamp(1, 65535), torch.zeros_like(d))
    return v.numpy().astype(np.uint16)


def write_video(frames: np.ndarray, path: Path, fps: int = 24) -> None:
    """Write ``frames`` [T, H, W, 3] uint8 as an H.264 MP4 at ``path`` (atomically; the encoder's exit status is
    checked, so a full disk is an error and an existing file is kept)."""
    from lyra.media import write_video as write_checked

    write_checked(iter(frames), path, fps=float(fps))


def example_metadata(ex: Example, preset: str, units_per_metre: float, videos: list[str]) -> dict:
    """The ``cameras.json`` content for ``ex``."""
    cams = ex.cameras.to("cpu")
    return {
        "format": FORMAT,
        "version": VERSION,
        "seed": ex.seed,
        "family": ex.family,
        "preset": preset,
        "frames": int(cams.shape[1]),
        "width": cams.width,
        "height": cams.height,
        "fov_y_deg": float(cams.fov_y_deg.reshape(-1)[0]),
        "center_depth": ex.center_depth,
        "dynamic": ex.dynamic,
        "times": None if ex.times is None else ex.times.cpu().tolist(),
        "conventions": "OpenCV cameras (x right, y down, z forward), c2w camera-to-world, world -y up, "
                       "metres, depth = z-depth",
        "trajectories": list(TRAJECTORY_NAMES),
        "videos": videos,
        "input_depth_png": {"file": "input_depth.png", "units_per_metre": units_per_metre, "no_surface": 0},
        "input_camera": {"K": cams.K[0, 0].tolist(), "c2w": cams.c2w[0, 0].tolist()},
        "cameras": cams.to_dict(),
    }


def write_example(ex: Example, folder: str | os.PathLike, preset: str = "tiny", fps: int = 24) -> list[Path]:
    """Write ``ex`` into ``folder`` (created if missing, see :func:`prepare_output_dir`). Returns the files."""
    out = prepare_output_dir(folder)
    written: list[Path] = []
    with atomic_path(out / "input.png") as tmp:
        Image.fromarray(to_uint8(ex.image)).save(tmp, format="PNG")
    written.append(out / "input.png")
    scale = depth_units_per_metre(ex.depth)
    with atomic_path(out / "input_depth.png") as tmp:
        Image.fromarray(depth_to_uint16(ex.depth, scale)).save(tmp, format="PNG")
    written.append(out / "input_depth.png")
    with atomic_path(out / "input_depth.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, ex.depth.detach().float().cpu().numpy())
    written.append(out / "input_depth.npy")
    videos = []
    frames = to_uint8(ex.videos)
    for i, name in enumerate(TRAJECTORY_NAMES):
        fname = f"traj{i}_{name}.mp4"
        write_video(frames[i], out / fname, fps)
        videos.append(fname)
        written.append(out / fname)
    with atomic_path(out / "cameras.json") as tmp:
        tmp.write_text(json.dumps(example_metadata(ex, preset, scale, videos), indent=1))
    written.append(out / "cameras.json")
    return written
