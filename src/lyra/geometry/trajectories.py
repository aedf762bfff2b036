"""Camera trajectories: GEN3C's six, a fly-through orbit, and user camera paths from files.

All trajectories here are built in the *input camera's frame* (OpenCV: x right, y down, z forward)
and then mapped to the world with the input camera's ``c2w``; the scene centre is the point at
``center_depth`` on the input camera's optical axis, ``(0, 0, center_depth)`` in that frame.

GEN3C / Lyra (LYRA_FACTS "Teacher"): six trajectories per image, each starting at the input view,
the cameras looking at the scene centre with the input camera's roll kept:

====  ==========  =================  ==============================================================
idx   name        d drawn from       camera position of frame i of T (input-camera frame)
====  ==========  =================  ==============================================================
0     left        U[0.2, 0.3]        x = -i·d·c/T
1     right       U[0.2, 0.3]        x = +i·d·c/T
2     up          U[0.1, 0.2]        y = -i·d·c/T   (image y points down, so -y is up)
3     zoom_out    U[0.3, 0.4]        z = -i·d·c/T
4     zoom_in     U[0.3, 0.4]        z = +i·d·c/T
5     spiral      U[0.4, 0.6]        θ = 4π·i/(T-1); x = 0.15·d·c·(cos θ - 1), y = 0.10·d·c·sin θ
====  ==========  =================  ==============================================================

with ``c`` the centre depth and ``d`` the drawn distance times the movement factor. This is GEN3C's
step formula with ``n_steps = T`` (at the release's T = 121 the last frame sits at 120/121 · d · c);
at the ``tiny`` preset's T = 17 the same formula gives 16/17 · d · c. The spiral is clockwise on screen.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence

import torch
from torch import Tensor

from lyra.errors import FormatError
from lyra.fileio import check_input_file
from lyra.geometry.cameras import Cameras, intrinsics_from_fov, look_at

#: GEN3C's trajectory names, in Lyra's index order.
TRAJECTORY_NAMES: tuple[str, ...] = ("left", "right", "up", "zoom_out", "zoom_in", "spiral")

#: Range of the distance factor d of each trajectory (before the movement factor).
DISTANCE_RANGES: dict[str, tuple[float, float]] = {
    "left": (0.2, 0.3),
    "right": (0.2, 0.3),
    "up": (0.1, 0.2),
    "zoom_out": (0.3, 0.4),
    "zoom_in": (0.3, 0.4),
    "spiral": (0.4, 0.6),
}

#: The order in which the official demo lists the trajectories (spiral first).
DEMO_ORDER: tuple[int, ...] = (5, 0, 1, 2, 3, 4)

SPIRAL_RADIUS_X = 0.15
SPIRAL_RADIUS_Y = 0.10
SPIRAL_CIRCLES = 2

_LINEAR_AXES: dict[str, tuple[int, float]] = {
    "left": (0, -1.0),
    "right": (0, 1.0),
    "up": (1, -1.0),
    "zoom_out": (2, -1.0),
    "zoom_in": (2, 1.0),
}


def _check_single(camera: Cameras) -> None:
    if len(camera.shape) != 0:
        raise ValueError(f"expected one input camera (batch shape []), got batch shape {tuple(camera.shape)}")


def trajectory_positions(name: str, center_depth: float, num_frames: int, distance: float) -> Tensor:
    """Camera centres ``[T, 3]`` of trajectory ``name`` in the input camera's frame (see module doc)."""
    if name not in TRAJECTORY_NAMES:
        raise ValueError(f"unknown trajectory {name!r}; choose from {', '.join(TRAJECTORY_NAMES)}")
    i = torch.arange(num_frames, dtype=torch.float64)
    pos = torch.zeros(num_frames, 3, dtype=torch.float64)
    if name == "spiral":
        theta = 2 * math.pi * SPIRAL_CIRCLES * i / max(num_frames - 1, 1)
        pos[:, 0] = SPIRAL_RADIUS_X * distance * center_depth * (torch.cos(theta) - 1)
        pos[:, 1] = SPIRAL_RADIUS_Y * distance * center_depth * torch.sin(theta)
    else:
        axis, sign = _LINEAR_AXES[name]
        pos[:, axis] = sign * i * distance * center_depth / num_frames
    return pos.float()


def cameras_looking_at(input_camera: Cameras, positions: Tensor, center_depth: float) -> Cameras:
    """Cameras at ``positions`` [T, 3] (input-camera frame) looking at the scene centre.

    The roll of the input camera is kept (its image "down" direction stays down); intrinsics are the
    input camera's. Returns ``Cameras`` of shape ``[T]``. A position on the optical axis behind the
    centre keeps the input orientation exactly.
    """
    _check_single(input_camera)
    target = torch.tensor([0.0, 0.0, center_depth]).expand_as(positions)
    local = look_at(positions, target, up=(0.0, -1.0, 0.0))  # [T, 4, 4] in the input frame
    c2w = input_camera.c2w.to(local) @ local
    K = input_camera.K.expand(positions.shape[0], 3, 3).contiguous()
    return Cameras(K, c2w, input_camera.width, input_camera.height)


def gen3c_trajectory(
    name: str, input_camera: Cameras, center_depth: float, num_frames: int, distance: float
) -> Cameras:
    """One GEN3C trajectory ``[T]`` with distance factor ``distance`` (already times the movement factor)."""
    return cameras_looking_at(
        input_camera, trajectory_positions(name, center_depth, num_frames, distance), center_depth
    )


def sample_distances(
    movement: float = 1.0, generator: torch.Generator | None = None, names: Sequence[str] = TRAJECTORY_NAMES
) -> list[float]:
    """Draw d ~ U[lo, hi] for each trajectory (in ``names`` order) and multiply by ``movement``."""
    u = torch.rand(len(names), generator=generator, dtype=torch.float64)
    return [movement * (DISTANCE_RANGES[n][0] + float(u[k]) * (DISTANCE_RANGES[n][1] - DISTANCE_RANGES[n][0]))
            for k, n in enumerate(names)]


def sample_gen3c_trajectories(
    input_camera: Cameras,
    center_depth: float,
    num_frames: int,
    movement: float = 1.0,
    generator: torch.Generator | None = None,
    names: Sequence[str] = TRAJECTORY_NAMES,
    distances: Sequence[float] | None = None,
) -> Cameras:
    """The six GEN3C trajectories from one input camera, ``Cameras`` of shape ``[len(names), T]``.

    Distances are drawn from :data:`DISTANCE_RANGES` with ``generator`` (deterministic per seed) unless
    ``distances`` gives them; frame 0 of every trajectory is the input camera.
    """
    if center_depth <= 0 or not math.isfinite(center_depth):
        raise ValueError(f"center_depth must be a positive finite number, got {center_depth}")
    if distances is None:
        distances = sample_distances(movement, generator, names)
    trajs = [gen3c_trajectory(n, input_camera, center_depth, num_frames, d)
             for n, d in zip(names, distances, strict=True)]
    return Cameras(torch.stack([t.K for t in trajs]), torch.stack([t.c2w for t in trajs]),
                   input_camera.width, input_camera.height)


def orbit(
    center: Tensor | Sequence[float],
    radius: float,
    num_frames: int,
    width: int,
    height: int,
    fov_y_deg: float = 50.0,
    elevation_deg: float = 15.0,
    arc_deg: float = 360.0,
    start_deg: float = 0.0,
    up: Sequence[float] = (0.0, -1.0, 0.0),
) -> Cameras:
    """Cameras ``[T]`` circling ``center`` at ``radius``, ``elevation_deg`` above the horizontal plane.

    The plane is perpendicular to ``up`` (world direction shown up in the image; default -y, OpenCV
    world). Angle 0 places the camera on the ``-z`` side of the centre, looking along +z. With
    ``arc_deg`` < 360 the camera swings from ``start_deg - arc/2`` to ``start_deg + arc/2`` and back.
    """
    center = torch.as_tensor(center, dtype=torch.float32)
    up_v = torch.nn.functional.normalize(torch.as_tensor(up, dtype=torch.float32), dim=0)
    # an orthonormal basis (a, b) of the horizontal plane, with b = -z projected when possible
    ref = torch.tensor([0.0, 0.0, -1.0])
    if abs(float(ref @ up_v)) > 0.99:
        ref = torch.tensor([1.0, 0.0, 0.0])
    b = torch.nn.functional.normalize(ref - (ref @ up_v) * up_v, dim=0)
    a = torch.linalg.cross(up_v, b)
    t = torch.arange(num_frames, dtype=torch.float32) / max(num_frames, 1)
    if arc_deg >= 360.0:
        ang = torch.deg2rad(start_deg + 360.0 * t)
    else:
        ang = torch.deg2rad(start_deg + 0.5 * arc_deg * torch.sin(2 * math.pi * t))
    el = math.radians(elevation_deg)
    dirs = (torch.cos(ang)[:, None] * b + torch.sin(ang)[:, None] * a) * math.cos(el) + math.sin(el) * up_v
    eye = center + radius * dirs
    c2w = look_at(eye, center.expand_as(eye), up=up_v)
    return Cameras.from_fov(fov_y_deg, width, height, c2w)


# --------------------------------------------------------------------------- camera path files
CAMERA_PATH_SCHEMA = """\
lyra camera path (JSON), version 1:
{
  "format": "lyra-camera-path", "version": 1,
  "width": 320, "height": 176,                 # image size the intrinsics refer to
  "frames": [                                  # one entry per camera, in playback order
    {"c2w": [[r00,r01,r02,tx],[r10,r11,r12,ty],[r20,r21,r22,tz],[0,0,0,1]],   # OpenCV camera-to-world
     "fov_y_deg": 60.0}                        # or "K": [[fx,0,cx],[0,fy,cy],[0,0,1]] in pixels
  ]
}
Also read: nerfstudio / instant-ngp "transforms.json" (OpenGL camera-to-world "transform_matrix",
intrinsics fl_x/fl_y/cx/cy/w/h or camera_angle_x, at the top level or per frame).
"""


def _matrix(value, shape: tuple[int, int], where: str) -> Tensor:
    try:
        m = torch.tensor(value, dtype=torch.float32)
    except (TypeError, ValueError) as e:
        raise FormatError(f"{where}: not a numeric matrix ({e})") from None
    if tuple(m.shape) == (3, 4) and shape == (4, 4):
        m = torch.cat([m, torch.tensor([[0.0, 0.0, 0.0, 1.0]])], 0)
    if tuple(m.shape) != shape:
        raise FormatError(f"{where}: expected a {shape[0]}x{shape[1]} matrix, got shape {tuple(m.shape)}")
    if not torch.isfinite(m).all():
        raise FormatError(f"{where}: non-finite values")
    return m


def _lyra_path(data: dict, src: str) -> Cameras:
    try:
        width, height = int(data["width"]), int(data["height"])
        frames = data["frames"]
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"{src}: missing or invalid field {e}; see docs/camera_paths.md for the schema") from None
    if not isinstance(frames, list) or not frames:
        raise FormatError(f"{src}: 'frames' must be a non-empty list")
    _check_size(width, height, src)
    Ks, c2ws = [], []
    for k, f in enumerate(frames):
        where = f"{src}: frames[{k}]"
        if not isinstance(f, dict) or "c2w" not in f:
            raise FormatError(f"{where}: needs a 'c2w' 4x4 matrix")
        c2ws.append(_matrix(f["c2w"], (4, 4), where + ".c2w"))
        if "K" in f:
            Ks.append(_matrix(f["K"], (3, 3), where + ".K"))
        elif "fov_y_deg" in f:
            fov = float(f["fov_y_deg"])
            if not 0 < fov < 180:
                raise FormatError(f"{where}: fov_y_deg must lie in (0, 180), got {fov}")
            Ks.append(intrinsics_from_fov(fov, width, height))
        else:
            raise FormatError(f"{where}: needs 'K' or 'fov_y_deg'")
    return _checked(Cameras(torch.stack(Ks), torch.stack(c2ws), width, height), src)


def _check_size(width: int, height: int, src: str) -> None:
    from lyra.geometry.validate import MAX_SIDE

    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise FormatError(f"{src}: image size {width}x{height} must be positive and at most {MAX_SIDE} a side")


def _checked(cams: Cameras, src: str) -> Cameras:
    """``cams`` after :func:`lyra.geometry.validate.check_camera_matrices` (orthonormal rotations, det +1,
    finite values, positive focal lengths)."""
    from lyra.geometry.validate import check_camera_matrices

    check_camera_matrices(cams.K, cams.c2w, cams.width, cams.height, src)
    return cams


_GL_TO_CV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


def _nerfstudio_path(data: dict, src: str) -> Cameras:
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise FormatError(f"{src}: 'frames' must be a non-empty list")

    def intr(f: dict, key: str):
        return f.get(key, data.get(key))

    Ks, c2ws, sizes = [], [], set()
    for k, f in enumerate(frames):
        where = f"{src}: frames[{k}]"
        if "transform_matrix" not in f:
            raise FormatError(f"{where}: needs 'transform_matrix'")
        c2ws.append(_matrix(f["transform_matrix"], (4, 4), where + ".transform_matrix") @ _GL_TO_CV)
        w, h = intr(f, "w"), intr(f, "h")
        if w is None or h is None:
            raise FormatError(f"{where}: image size 'w'/'h' missing")
        w, h = int(w), int(h)
        sizes.add((w, h))
        fx, fy = intr(f, "fl_x"), intr(f, "fl_y")
        if fx is None:
            angle = intr(f, "camera_angle_x")
            if angle is None:
                raise FormatError(f"{where}: needs 'fl_x' or 'camera_angle_x'")
            fx = 0.5 * w / math.tan(float(angle) / 2)
        fy = fx if fy is None else fy
        cx, cy = intr(f, "cx"), intr(f, "cy")
        cx = w / 2 if cx is None else cx
        cy = h / 2 if cy is None else cy
        Ks.append(torch.tensor([[float(fx), 0.0, float(cx)], [0.0, float(fy), float(cy)], [0.0, 0.0, 1.0]]))
    if len(sizes) != 1:
        raise FormatError(f"{src}: frames have different image sizes {sorted(sizes)}; lyra needs one size")
    (w, h), = sizes
    _check_size(w, h, src)
    return _checked(Cameras(torch.stack(Ks), torch.stack(c2ws), w, h), src)


def load_camera_path(path: str | os.PathLike) -> Cameras:
    """Read a camera path file: lyra's JSON schema (:data:`CAMERA_PATH_SCHEMA`), a nerfstudio ``transforms.json``
    or a Lyra-2 ``trajectory.npz`` (:mod:`lyra.geometry.camera_npz`). Returns ``Cameras`` of shape ``[T]`` in
    OpenCV convention."""
    from lyra.limits import MAX_CAMERA_FRAMES, MAX_JSON_BYTES, read_bytes_bounded

    p = check_input_file(path)
    from lyra.geometry.camera_npz import is_npz, load_npz_path

    if is_npz(p):  # Lyra-2 trajectory.npz (w2c + intrinsics arrays)
        return load_npz_path(p)
    try:
        data = json.loads(read_bytes_bounded(p, MAX_JSON_BYTES, "a camera path"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise FormatError(f"{p}: not a JSON camera path ({str(e)[:120]})") from None
    if not isinstance(data, dict):
        raise FormatError(f"{p}: expected a JSON object at the top level")
    frames = data.get("frames")
    if isinstance(frames, list) and len(frames) > MAX_CAMERA_FRAMES:
        raise FormatError(f"{p}: {len(frames)} frames; lyra reads at most {MAX_CAMERA_FRAMES} cameras from a path")
    try:
        if isinstance(frames, list) and frames and isinstance(frames[0], dict) and "transform_matrix" in frames[0]:
            return _nerfstudio_path(data, str(p))
        return _lyra_path(data, str(p))
    except (TypeError, ValueError, AttributeError, OverflowError, ZeroDivisionError) as e:
        raise FormatError(f"{p}: invalid value in the camera path ({str(e)[:120]})") from None


def camera_path_dict(cameras: Cameras) -> dict:
    """lyra's camera-path JSON (version 1) for a flat batch of cameras."""
    flat = cameras.flatten()
    return {
        "format": "lyra-camera-path",
        "version": 1,
        "width": flat.width,
        "height": flat.height,
        "frames": [{"c2w": flat.c2w[i].tolist(), "K": flat.K[i].tolist()} for i in range(len(flat))],
    }
