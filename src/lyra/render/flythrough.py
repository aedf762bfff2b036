"""Fly-through videos of a scene: the camera path and the frame loop that ``lyra generate --video`` and
``lyra render`` share, for static scenes (one Gaussian set) and dynamic ones (one set per time).

* :func:`flythrough` — the fly-through of a :class:`~lyra.scene.Scene` or a :class:`~lyra.scene.DynamicScene` (a
  static scene is the one-time case): its cameras and its frames (what ``lyra generate --video`` writes).

* :func:`flythrough_cameras` — the trajectory cameras ``[V, T]`` one after the other, then an orbit around the
  scene's centre (what ``lyra generate --video`` shows).
* :func:`flythrough_times` — the scene time of each of those frames (dynamic scenes): trajectory frame ``f`` shows
  ``camera_times[f]``, and the orbit sweeps time from 0 to 1.
* :func:`render_frames` — renders frame ``k`` from camera ``k``, lazily (a generator, so a video streams to disk);
  with several Gaussian sets, frame ``k`` uses set ``which[k]`` (each set moved to the device once per run of
  frames that use it). On the CPU, one frame per torch thread at a time, in parallel.
* :func:`dynamic_frames` — :func:`render_frames` for a :class:`~lyra.scene.DynamicScene`: frame ``k`` shows
  the Gaussians of the stored time *nearest* to ``times[k]`` (no interpolation between stored times).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from tqdm import tqdm

from lyra.errors import ConfigError
from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras

if TYPE_CHECKING:
    from lyra.scene import DynamicScene, Scene

__all__ = ["dynamic_frames", "flythrough", "flythrough_cameras", "flythrough_times", "render_frames",
           "scene_center_and_radius"]


def scene_center_and_radius(g: Gaussians) -> tuple[Tensor, float]:
    """A robust centre ``[3]`` (median of the centres) and extent (80th-percentile distance from it) of a scene."""
    idx = torch.randperm(len(g), generator=torch.Generator().manual_seed(0))[:200_000]
    means = g.means[idx].float()
    center = means.median(dim=0).values
    extent = torch.quantile((means - center).norm(dim=-1), 0.8).item()
    return center, max(extent, 1e-3)


def flythrough_cameras(cameras: Cameras, gaussians: Gaussians, orbit_frames: int) -> Cameras:
    """The fly-through path: the trajectory cameras (``[V, T]`` or ``[T]``) one after the other (``V·T`` frames),
    then an orbit of ``orbit_frames`` cameras around the centre of ``gaussians`` (radius twice its extent) at the
    trajectories' vertical field of view. Returns a flat ``Cameras [V·T + orbit_frames]`` (no orbit when
    ``orbit_frames`` is 0 or there are no Gaussians)."""
    from lyra.geometry.trajectories import orbit

    cams = cameras.flatten()
    if orbit_frames <= 0 or len(gaussians) == 0:
        return cams
    center, extent = scene_center_and_radius(gaussians)
    fy = float(cams.K[0, 1, 1])
    fov = math.degrees(2 * math.atan(0.5 * cams.height / fy))
    orb = orbit(center.to(cams.device), 2.0 * extent, orbit_frames, cams.width, cams.height, fov_y_deg=fov)
    return Cameras(torch.cat([cams.K, orb.K.to(cams.device)]), torch.cat([cams.c2w, orb.c2w.to(cams.device)]),
                   cams.width, cams.height)


def flythrough_times(camera_times: Tensor, num_trajectories: int, orbit_frames: int) -> Tensor:
    """Scene time ``[V·T + orbit_frames]`` of each frame of :func:`flythrough_cameras`: each of the ``V``
    trajectories replays ``camera_times`` ``[T]`` (its frame ``f`` is the scene at ``camera_times[f]``), then the
    orbit sweeps ``linspace(0, 1, orbit_frames)`` (time advances while the camera circles)."""
    ct = torch.as_tensor(camera_times, dtype=torch.float32).reshape(-1)
    orbit = torch.linspace(0.0, 1.0, orbit_frames) if orbit_frames > 1 else torch.zeros(max(orbit_frames, 0))
    return torch.cat([ct.repeat(num_trajectories), orbit])


def render_frames(gaussians: Gaussians | Sequence[Gaussians], cams: Cameras,
                  background: Sequence[float] = (1.0, 1.0, 1.0), backend: str = "auto", progress: bool = True,
                  which: Sequence[int] | Tensor | None = None) -> Iterator[Tensor]:
    """Render camera ``k`` of ``cams`` (flat ``[N]``) for ``k = 0 … N−1``, one frame at a time, as
    ``[H, W, 3]`` float on the CPU, with a progress bar.

    ``gaussians``: one set (every frame), or a sequence of sets with ``which`` ``[N]`` naming the set of each frame.
    The sets are moved to ``cams``' device when first used (a set used by consecutive frames moves once).
    """
    from lyra.render import render

    if isinstance(gaussians, Gaussians):
        sets: Sequence[Gaussians] = (gaussians,)
        pick = [0] * len(cams)
    else:
        sets = gaussians
        if which is None:
            raise ConfigError("several Gaussian sets need `which`, the set of each frame")
        pick = [int(i) for i in torch.as_tensor(which).reshape(-1).tolist()]
        if len(pick) != len(cams):
            raise ConfigError(f"{len(pick)} set indices for {len(cams)} cameras")
        if pick and not 0 <= min(pick) <= max(pick) < len(sets):
            raise ConfigError(f"set indices must lie in 0..{len(sets) - 1}")
    workers = torch.get_num_threads() if cams.device.type == "cpu" else 1
    if workers <= 1:
        current, g = -1, None
        for k in tqdm(range(len(cams)), desc="rendering", unit="frame", disable=not progress):
            if pick[k] != current:
                current, g = pick[k], sets[pick[k]].to(cams.device)
            with torch.no_grad():
                yield render(g, cams[k], background=background, backend=backend).rgb.cpu()
        return
    yield from _frames_in_threads(sets, pick, cams, background, backend, progress, workers)


def _frames_in_threads(sets: Sequence[Gaussians], pick: list[int], cams: Cameras, background: Sequence[float],
                       backend: str, progress: bool, workers: int) -> Iterator[Tensor]:
    """:func:`render_frames` on the CPU: ``workers`` frames at a time, each in its own thread with one torch thread,
    yielded in order (at most ``2 · workers`` frames ahead). The renderer runs hundreds of small operations per
    frame; one frame per core does not wake a pool of OpenMP threads for each, which matters most with
    ``OMP_WAIT_POLICY=PASSIVE`` (:mod:`lyra.cpu_threads`): 150 frames of 74k Gaussians at 320×176 on two cores took
    76 s with two OpenMP threads and 45 s so (the same frames, bit for bit). torch's thread count is 1 while
    the frames are being made and restored after."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    from lyra.render import render

    def one(k: int) -> Tensor:
        with torch.no_grad():
            return render(sets[pick[k]].to(cams.device), cams[k], background=background, backend=backend).rgb.cpu()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool, tqdm(total=len(cams), desc="rendering", unit="frame",
                                                       disable=not progress) as bar:
            pending: deque[Future[Tensor]] = deque()
            submitted = 0
            for _ in range(len(cams)):
                while submitted < len(cams) and len(pending) < 2 * workers:
                    pending.append(pool.submit(one, submitted))
                    submitted += 1
                frame = pending.popleft().result()
                bar.update()
                yield frame
    finally:
        torch.set_num_threads(threads)


def dynamic_frames(scene: DynamicScene, cams: Cameras, times: Tensor, background: Sequence[float] = (1.0, 1.0, 1.0),
                   backend: str = "auto", progress: bool = True) -> Iterator[Tensor]:
    """Render a dynamic scene along ``cams`` (flat ``[N]``): frame ``k`` shows the Gaussians of the scene's stored
    time nearest to ``times[k]`` (``[N]`` in [0, 1]; ties → the earlier time; no interpolation)."""
    from lyra.scene import nearest_time_index

    t = torch.as_tensor(times, dtype=torch.float32).reshape(-1)
    if len(t) != len(cams):
        raise ConfigError(f"{len(t)} times for {len(cams)} cameras")
    which = nearest_time_index(scene.times, t)
    return render_frames(scene.gaussians, cams, background, backend, progress, which=which)


def flythrough(scene: Scene | DynamicScene, orbit_frames: int, device: str | torch.device | None = None,
               background: Sequence[float] = (1.0, 1.0, 1.0), backend: str = "auto",
               progress: bool = True) -> tuple[Cameras, Iterator[Tensor]]:
    """The fly-through of a scene, static or dynamic: its cameras (flat ``[V·T + orbit_frames]``,
    :func:`flythrough_cameras` framed on the first time's Gaussians, on ``device``) and its frames ``[H, W, 3]``
    (lazily, :func:`render_frames`). Frame ``k`` shows the stored time nearest to the path's time
    (:func:`flythrough_times`: trajectory frame ``f`` at ``camera_times[f]``, the orbit sweeping 0 → 1); a static
    scene has one time, so every frame shows its one Gaussian set."""
    from lyra.scene import nearest_time_index

    if scene.cameras is None:
        raise ConfigError("this scene has no trajectory cameras to fly along")
    sets = scene.gaussian_sets
    cams = flythrough_cameras(scene.cameras, sets[0], orbit_frames)
    if device is not None:
        cams = cams.to(device)
    times = flythrough_times(scene.camera_times, scene.cameras.shape[0], orbit_frames)
    which = nearest_time_index(scene.times, times)
    return cams, render_frames(sets, cams, background, backend, progress, which=which)
