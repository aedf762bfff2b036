"""Training examples: a world, an input camera placed sensibly in it, the six GEN3C trajectories from
that camera and their exact ground-truth videos and depth.

Placement (all deterministic per seed): the family generator proposes an eye, yaw and pitch and builds
the world around them. The proposal is accepted when, in a depth-only render of the input view,
fewer than 2 % of pixels are nearer than 0.35 m, at most 55 % is sky, at least half of the centre
window (the middle quarter of the image in each direction) hits a surface, and the **centre depth**
(median z-depth of the finite pixels of that window) lies in [0.8, 60] m. The six trajectories are then
drawn (:func:`lyra.geometry.trajectories.sample_gen3c_trajectories`, distances scaled by the centre
depth) and every trajectory camera must lie 0.25 m or more inside free space at its frame's time;
objects in the way are removed (up to three rounds), otherwise the proposal is redrawn.

Dynamic examples: frame ``f`` of every trajectory is rendered at time ``t_f = f / (T - 1)`` (the
camera moves while time advances); ``times`` holds ``t_f``. With ``input_video=True`` the example also holds
the *input video*: the input camera (which does not move) rendered at every ``t_f`` with its exact depth —
the monocular video a dynamic teacher starts from (frame 0 = ``image``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.errors import ConfigError
from lyra.geometry.cameras import Cameras, look_at
from lyra.geometry.depth import center_depth_of, center_window  # noqa: F401  (re-exported)
from lyra.geometry.trajectories import TRAJECTORY_NAMES, sample_gen3c_trajectories
from lyra.world.camera_model import PhotoCamera, develop
from lyra.world.dynamic import add_motion
from lyra.world.families import FAMILIES, GENERATORS, Rng
from lyra.world.photo import dress, photo_camera
from lyra.world.presets import WorldPreset, get_preset
from lyra.world.render import render, render_depth
from lyra.world.scene import STYLES, Scene, SceneBatch

MAX_ATTEMPTS = 16
CLEARANCE = 0.25


@dataclass
class Example:
    """One training/evaluation example (tensors on one device).

    Attributes:
        image: input image ``[3, H, W]`` in [0, 1] (= frame 0 of every trajectory).
        depth: z-depth of the input view ``[H, W]`` (``inf`` where the ray leaves the world: sky).
        cameras: ``Cameras`` of shape ``[6, T]`` (trajectory order: left, right, up, zoom_out, zoom_in,
            spiral; frame 0 = the input camera).
        videos: ground-truth frames ``[6, T, 3, H, W]`` in [0, 1].
        depths: ground-truth z-depth ``[6, T, H, W]`` (``inf`` = sky).
        seed: the world seed; family: ``"indoor"`` or ``"outdoor"``; center_depth: the scene-centre
            depth (metres) that scaled the trajectories.
        times: ``[T]`` time of each frame in [0, 1] for dynamic examples, else ``None``.
        input_video: ``[T, 3, H, W]`` the input camera's video over ``times`` (frame 0 = ``image``), or ``None``
            (rendered on request, see :func:`render_samples`).
        input_depths: ``[T, H, W]`` its exact z-depth (frame 0 = ``depth``), or ``None``.
    """

    image: Tensor
    depth: Tensor
    cameras: Cameras
    videos: Tensor
    depths: Tensor
    seed: int
    family: str
    center_depth: float
    times: Tensor | None = None
    input_video: Tensor | None = None
    input_depths: Tensor | None = None

    @property
    def dynamic(self) -> bool:
        return self.times is not None

    def to(self, device: torch.device | str) -> Example:
        def mv(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        return Example(self.image.to(device), self.depth.to(device), self.cameras.to(device),
                       self.videos.to(device), self.depths.to(device), self.seed, self.family,
                       self.center_depth, mv(self.times), mv(self.input_video), mv(self.input_depths))


@dataclass
class WorldSample:
    """A world with its input camera and trajectories, before rendering (cheap; CPU)."""

    scene: Scene
    input_camera: Cameras
    center_depth: float
    cameras: Cameras
    times: Tensor | None
    preset: WorldPreset
    camera: PhotoCamera | None = None  # photo style: the camera that develops its radiance (None: classic)

    @property
    def frame_times(self) -> Tensor:
        """Time of each frame ``[T]`` (zeros for a static world)."""
        T = self.preset.frames
        return self.times if self.times is not None else torch.zeros(T)


def _input_camera(eye, forward, preset: WorldPreset) -> Cameras:
    eye_t = torch.tensor(eye, dtype=torch.float32)
    c2w = look_at(eye_t, eye_t + torch.tensor(forward, dtype=torch.float32))
    return Cameras.from_fov(preset.fov_y_deg, preset.width, preset.height, c2w)


def _view_ok(depth: Tensor) -> float | None:
    """Centre depth if the input view passes the placement checks, else ``None``."""
    if float((depth < 0.35).float().mean()) > 0.02:
        return None
    if float(torch.isinf(depth).float().mean()) > 0.55:
        return None
    cd = center_depth_of(depth)
    if cd is None or not 0.8 <= cd <= 60.0:
        return None
    return cd


#: Preferred centre depth per family (metres); views outside are penalised, not rejected.
PREFERRED_CENTER = {"indoor": (2.0, 5.5), "outdoor": (4.0, 18.0)}


def view_score(depth: Tensor, ids: Tensor, family: str, structure_ids: set[int]) -> float:
    """How good an input view is (higher is better): centre depth in the family's preferred range,
    several objects at different depths, no single object filling the view, few very near pixels.

    ``ids`` are render ids (object + 1); ``structure_ids`` those of walls/floors/ground (not objects).
    """
    cd = center_depth_of(depth)
    lo, hi = PREFERRED_CENTER[family]
    score = -2.0 * abs(torch.log(torch.tensor(cd / min(max(cd, lo), hi))).item())
    flat = ids.reshape(-1)
    counts = torch.bincount(flat.long(), minlength=1).float() / flat.numel()
    obj = counts.clone()
    for i in structure_ids | {0}:
        if i < obj.numel():
            obj[i] = 0
    score -= 3.0 * max(0.0, float(obj.max()) - 0.35)
    score += 0.08 * min(int((obj > 0.003).sum()), 10)
    score -= 5.0 * float((depth < 0.8).float().mean())
    fin = depth[torch.isfinite(depth)].double()
    if fin.numel() > 10:
        score += 0.3 * min(float(torch.log(fin).std()), 1.0)
    # rounded, so that summation-order noise (thread counts, CPU types) cannot flip a choice
    return round(score, 9)


def sample_world(seed: int, preset: str | WorldPreset = "tiny", dynamic: bool = False,
                 family: str | None = None, candidates: int = 3, style: str = "classic") -> WorldSample:
    """Generate the world of ``seed`` and place its input camera and trajectories (CPU, deterministic).

    Up to ``candidates`` valid proposals are scored with :func:`view_score`; the best one is kept. ``style``:
    ``"classic"`` (default) or ``"photo"`` (the same layout dressed by :func:`lyra.world.photo.dress`, with a
    camera model; see :mod:`lyra.world.photo`).
    """
    p = get_preset(preset)
    if style not in STYLES:
        raise ConfigError(f"unknown world style {style!r}; choose from {', '.join(STYLES)}")
    photo = style == "photo"
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"unknown world family {family!r}; choose from {', '.join(FAMILIES)}")
    rng = Rng(seed)
    fam = family if family is not None else rng.choice(FAMILIES)
    T = p.frames
    times = torch.arange(T, dtype=torch.float32) / max(T - 1, 1) if dynamic else None
    t_pts = (times if times is not None else torch.zeros(T)).repeat(len(TRAJECTORY_NAMES))
    best: tuple[float, WorldSample] | None = None
    found = 0
    for _attempt in range(MAX_ATTEMPTS):
        sub = Rng(rng.seed())
        builder, cam = GENERATORS[fam](seed, sub)
        if dynamic:
            add_motion(builder, sub, cam)
        traj_seed = sub.seed()
        if photo:
            dress(builder, seed, _attempt, cam)
        input_cam = _input_camera(cam.eye, cam.forward(), p)
        for _fix in range(4):
            scene = builder.build(preset=p.name, dynamic=dynamic, **({"style": style} if photo else {}))
            depth, ids = render_depth(scene, input_cam, times=0.0)
            cd = _view_ok(depth)
            if cd is None:
                break
            traj = sample_gen3c_trajectories(input_cam, cd, T, generator=torch.Generator().manual_seed(traj_seed))
            centers = traj.centers.reshape(-1, 3)
            if not bool(scene.inside(centers, t_pts, CLEARANCE).any()):
                structure = {int(o) + 1 for o in torch.cat([scene.plane_obj, scene.room_obj]).tolist()}
                score = view_score(depth, ids, fam, structure)
                if best is None or score > best[0]:
                    best = (score, WorldSample(scene, input_cam, cd, traj, times, p,
                                               photo_camera(seed, cd) if photo else None))
                found += 1
                break
            blocking = scene.colliding_objects(centers, t_pts, CLEARANCE)
            if not blocking:
                break  # walls or ground in the way: draw a new proposal
            builder.remove_objects(blocking)
        if found >= candidates:
            break
    if best is None:
        raise RuntimeError(f"world seed {seed}: no valid input camera after {MAX_ATTEMPTS} proposals")
    return best[1]


def _frames_cameras(ws: WorldSample, input_video: bool = False) -> tuple[Cameras, Tensor]:
    """Cameras to render, ``[1 + 6·(T-1)]`` (input view first, then frames 1.. of each trajectory), and their
    times; with ``input_video`` (dynamic worlds) ``T − 1`` more: the input camera at times ``t_1 … t_{T−1}``."""
    T = ws.preset.frames
    rest = ws.cameras[:, 1:].flatten()
    cams = [ws.input_camera.reshape(1), rest]
    times = [torch.zeros(1), ws.frame_times[1:].repeat(len(TRAJECTORY_NAMES))]
    if input_video and T > 1:
        ic = ws.input_camera
        cams.append(Cameras(ic.K.expand(T - 1, 3, 3), ic.c2w.expand(T - 1, 4, 4), ic.width, ic.height))
        times.append(ws.frame_times[1:])
    return Cameras.cat(cams), torch.cat(times)


def samples_cameras(samples: Sequence[WorldSample], input_video: bool = False
                    ) -> tuple[list[Cameras], Cameras, Tensor, Tensor]:
    """Every camera to render for ``samples`` (:func:`_frames_cameras` of each), for one batched render call.

    Returns ``(per_sample, cameras, times, world_index)``: each sample's cameras, all of them concatenated
    ``[N]``, their times ``[N]`` and the index of the sample each belongs to ``[N]`` (int64).
    """
    per_sample, times, idx = [], [], []
    for i, ws in enumerate(samples):
        c, t = _frames_cameras(ws, input_video)
        per_sample.append(c)
        times.append(t)
        idx.append(torch.full((len(c),), i, dtype=torch.long))
    return per_sample, Cameras.cat(per_sample), torch.cat(times), torch.cat(idx)


def _assemble(ws: WorldSample, rgb: Tensor, depth: Tensor, seed: int, input_video: bool = False) -> Example:
    T = ws.preset.frames
    V = len(TRAJECTORY_NAMES)
    H, W = ws.preset.height, ws.preset.width
    image, d0 = rgb[0], depth[0]
    n = 1 + V * (T - 1)
    videos = torch.cat([image.expand(V, 1, 3, H, W), rgb[1:n].reshape(V, T - 1, 3, H, W)], 1)
    depths = torch.cat([d0.expand(V, 1, H, W), depth[1:n].reshape(V, T - 1, H, W)], 1)
    dev = rgb.device
    iv = idep = None
    if input_video:
        iv = torch.cat([image[None], rgb[n:]]).contiguous()
        idep = torch.cat([d0[None], depth[n:]]).contiguous()
    return Example(image.contiguous(), d0.contiguous(), ws.cameras.to(dev), videos.contiguous(), depths.contiguous(),
                   seed, ws.scene.family, ws.center_depth, None if ws.times is None else ws.times.to(dev), iv, idep)


def render_samples(samples: Sequence[WorldSample], device: torch.device | str = "cpu",
                   aa: str = "adaptive", input_video: bool = False, max_pixels: int | None = None) -> list[Example]:
    """Render several world samples in one batched call (the fast path on a GPU).

    ``input_video``: also render the input camera's video over the frame times (``Example.input_video`` /
    ``input_depths``; for a static world every frame equals the input image). ``max_pixels``: pixels rendered
    per chunk (memory bound; default that of :func:`lyra.world.render.render`); it does not change the result.
    """
    dev = torch.device(device)
    cams, all_cams, times, idx = samples_cameras(samples, input_video)
    batch = SceneBatch.pack([ws.scene for ws in samples], dev)
    res = render(batch, all_cams.to(dev), times.to(dev), idx.to(dev), aa=aa, max_pixels=max_pixels)
    out, k = [], 0
    for ws, c in zip(samples, cams, strict=True):
        n = len(c)
        rgb = res.rgb[k:k + n]
        if ws.camera is not None:  # photo style: radiance → photograph (exposure metered on the input view)
            rgb = develop(rgb, res.depth[k:k + n], ws.camera)
        out.append(_assemble(ws, rgb, res.depth[k:k + n], ws.scene.seed, input_video))
        k += n
    return out


def make_example(seed: int, preset: str | WorldPreset = "tiny", dynamic: bool = False, family: str | None = None,
                 device: torch.device | str = "cpu", aa: str = "adaptive", input_video: bool = False,
                 style: str = "classic") -> Example:
    """The example of world ``seed``: a deterministic function of its arguments (see the module doc).

    The world and cameras are generated on the CPU (same on every machine); rendering runs on ``device``.
    ``input_video`` also renders the input camera's video (see :func:`render_samples`); ``style``: ``"classic"``
    or ``"photo"`` (:func:`sample_world`).
    """
    return render_samples([sample_world(seed, preset, dynamic, family, style=style)], device, aa, input_video)[0]


def make_examples(seeds: Sequence[int], preset: str | WorldPreset = "tiny", dynamic: bool = False,
                  family: str | None = None, device: torch.device | str = "cpu",
                  input_video: bool = False, style: str = "classic") -> list[Example]:
    """Several examples rendered in one batch (same results as :func:`make_example` per seed)."""
    return render_samples([sample_world(s, preset, dynamic, family, style=style) for s in seeds], device,
                          input_video=input_video)


#: :func:`load_example` crops frames to multiples of this many pixels (the teacher patches 8×-compressed
#: latents 2 × 2).
CROP_MULTIPLE = 16


def crop_example(ex: Example) -> Example:
    """Centre-crop an example's frames (and cameras) to sides that are multiples of 16 pixels."""
    H, W = ex.image.shape[-2:]
    h, w = H - H % CROP_MULTIPLE, W - W % CROP_MULTIPLE
    if (h, w) == (H, W):
        return ex
    if h == 0 or w == 0:
        raise ConfigError(f"frames {H}x{W} are smaller than {CROP_MULTIPLE} pixels")
    top, left = (H - h) // 2, (W - w) // 2
    ys, xs = slice(top, top + h), slice(left, left + w)

    def crop(t: Tensor | None) -> Tensor | None:
        return None if t is None else t[..., ys, xs]

    return Example(ex.image[..., ys, xs], ex.depth[ys, xs], ex.cameras.crop(left, top, w, h),
                   ex.videos[..., ys, xs], ex.depths[..., ys, xs], ex.seed, ex.family, ex.center_depth, ex.times,
                   crop(ex.input_video), crop(ex.input_depths))


def load_example(seed: int, preset: str | WorldPreset, device: torch.device | str, dynamic: bool = False) -> Example:
    """:func:`make_example` centre-cropped to multiples of 16 pixels (``dynamic``: a dynamic world with its input
    video): a held-out (or training) world example as the teacher and the evaluations read it."""
    return crop_example(make_example(seed, preset=preset, device=device, dynamic=dynamic, input_video=dynamic))
