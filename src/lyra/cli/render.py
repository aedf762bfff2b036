"""``lyra render FILE -o out.mp4``: a fly-through video (or PNG frames) of a splat file."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from lyra.cli._common import (
    add_device_argument,
    check_fps,
    check_number,
    parse_color,
    parse_size,
    parse_vector,
    pick_device,
)
from lyra.errors import ConfigError
from lyra.gaussians import Gaussians
from lyra.gaussians.io import load_gaussians
from lyra.geometry.cameras import Cameras
from lyra.geometry.trajectories import (
    DISTANCE_RANGES,
    TRAJECTORY_NAMES,
    gen3c_trajectory,
    load_camera_path,
    orbit,
)
from lyra.media import VIDEO_EXTENSIONS, to_uint8, write_frames, write_video
from lyra.render.flythrough import render_frames, scene_center_and_radius

__all__ = ["build_cameras", "register", "render_frames", "run", "scene_center_and_radius"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render",
        help="render a fly-through video or PNG frames of a splat file",
        description="Render a Gaussian splat file along a camera path and write a video (-o) and/or PNG "
        "frames (--frames). Paths: 'orbit' circles the scene's centre; a GEN3C trajectory name (left, right, "
        "up, zoom_out, zoom_in, spiral) moves from the OpenCV camera at the origin looking down +z (the input "
        "view of a lyra scene); a .json file gives your own path (lyra's camera-path schema or nerfstudio's "
        "transforms.json; see docs/camera_paths.md).",
        epilog="Examples:\n  lyra render scene.ply -o orbit.mp4\n"
        "  lyra render scene.ply -o left.mp4 --trajectory left --size 352x640\n"
        "  lyra render scene.spz --trajectory path.json --frames frames/\n"
        "  lyra render scene4d/ -o orbit4d.mp4          (a 4D scene: time advances along the orbit)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="a .ply, .splat or .spz file, or a 4D scene folder (lyra generate VIDEO -o DIR/): "
                   "time then advances from 0 to 1 along the path, each frame showing the nearest stored time")
    p.add_argument("-o", "--output", help=f"video file ({', '.join(VIDEO_EXTENSIONS)})")
    p.add_argument("--frames", metavar="DIR", help="also (or instead) write numbered PNG frames into this new folder")
    p.add_argument("--trajectory", default="orbit",
                   help="orbit (default), one of " + ", ".join(TRAJECTORY_NAMES) + ", or a camera-path .json")
    p.add_argument("--num-frames", type=int, default=None,
                   help="frames to render (default: 96 for orbit, 49 for GEN3C paths; a path file's own count)")
    p.add_argument("--size", type=parse_size, default=None, metavar="HxW",
                   help="image size, e.g. 176x320 (default 176x320; a path file's own size)")
    p.add_argument("--fov", type=float, default=50.0, help="vertical field of view in degrees (default 50)")
    p.add_argument("--fps", type=float, default=24.0, help="video frame rate (default 24)")
    p.add_argument("--background", type=parse_color, default=(1.0, 1.0, 1.0),
                   help="white (default), black, gray or r,g,b")
    p.add_argument("--radius", type=float, default=None, help="orbit radius (default: from the scene's extent)")
    p.add_argument("--elevation", type=float, default=15.0, help="orbit elevation in degrees (default 15)")
    p.add_argument("--center", type=parse_vector, default=None, metavar="X,Y,Z",
                   help="orbit centre (default: median of the Gaussians' centres)")
    p.add_argument("--up", type=parse_vector, default=(0.0, -1.0, 0.0), metavar="X,Y,Z",
                   help="world direction shown up (default 0,-1,0: OpenCV worlds, as lyra writes them)")
    p.add_argument("--center-depth", type=float, default=None,
                   help="scene-centre depth for GEN3C paths (default: median depth of the Gaussians in front)")
    p.add_argument("--movement", type=float, default=1.0, help="GEN3C movement factor (default 1.0)")
    p.add_argument("--backend", choices=("auto", "torch", "gsplat"), default="auto",
                   help="rasterizer: gsplat on CUDA when present (auto), or the pure-torch reference")
    p.add_argument("--time", type=float, default=None, metavar="T",
                   help="4D scene: freeze time at T in [0, 1] instead of advancing it along the path")
    add_device_argument(p)
    p.set_defaults(func=run)


def build_cameras(args: argparse.Namespace, g: Gaussians) -> Cameras:
    """The camera path that ``args`` asks for, as a flat ``Cameras`` batch ``[T]``."""
    height, width = args.size or (176, 320)
    traj = args.trajectory
    if traj.lower().endswith(".json"):
        cams = load_camera_path(traj).flatten()
        if args.size:
            cams = cams.resize(width, height)
        if args.num_frames:
            idx = torch.linspace(0, len(cams) - 1, args.num_frames).round().long()
            cams = cams[idx]
        return cams
    if len(g) == 0:
        raise ConfigError("the file holds no Gaussians: nothing to frame a camera path around")
    if traj == "orbit":
        center, extent = scene_center_and_radius(g)
        if args.center is not None:
            center = torch.tensor(args.center)
        radius = args.radius if args.radius is not None else 2.0 * extent
        return orbit(center, radius, args.num_frames or 96, width, height, fov_y_deg=args.fov,
                     elevation_deg=args.elevation, up=args.up)
    if traj in TRAJECTORY_NAMES:
        depth = args.center_depth
        if depth is None:
            z = g.means[:, 2]
            z = z[z > 0.1]
            if len(z) == 0:
                raise ConfigError("no Gaussians lie in front of the origin camera; pass --center-depth, or use "
                                  "--trajectory orbit")
            depth = float(z.median())
        lo, hi = DISTANCE_RANGES[traj]
        start = Cameras.from_fov(args.fov, width, height)
        return gen3c_trajectory(traj, start, depth, args.num_frames or 49, 0.5 * (lo + hi) * args.movement)
    raise ConfigError(f"unknown trajectory {traj!r}: use orbit, {', '.join(TRAJECTORY_NAMES)} or a .json path")


def run(args: argparse.Namespace) -> int:
    if not args.output and not args.frames:
        raise ConfigError("nothing to write: give -o VIDEO and/or --frames DIR")
    if args.output and Path(args.output).suffix.lower() not in VIDEO_EXTENSIONS:
        raise ConfigError(f"{args.output}: unknown video extension; use one of {', '.join(VIDEO_EXTENSIONS)}")
    if args.num_frames is not None and args.num_frames < 1:
        raise ConfigError("--num-frames must be at least 1")
    if not 0 < args.fov < 180 or not math.isfinite(args.fov):
        raise ConfigError("--fov must lie in (0, 180) degrees")
    if args.time is not None and not 0.0 <= args.time <= 1.0:
        raise ConfigError("--time must lie in [0, 1]")
    check_fps(args.fps)
    check_number("radius", args.radius, 0.0)
    check_number("elevation", args.elevation, -90.0, 90.0, lo_open=False)
    check_number("center-depth", args.center_depth, 0.0)
    check_number("movement", args.movement)
    if not any(args.up):
        raise ConfigError("--up must be a non-zero direction")
    device = pick_device(args.device)
    scene4d = None
    if Path(args.file).is_dir():
        from lyra.scene import DynamicScene

        scene4d = DynamicScene.load(args.file, lazy=True)
        g = scene4d.at(args.time or 0.0).to(device)  # frames the path (orbit centre, GEN3C depth)
    else:
        if args.time is not None:
            raise ConfigError("--time applies to a 4D scene folder (lyra generate VIDEO -o DIR/)")
        g = load_gaussians(args.file).to(device)
    cams = build_cameras(args, g).to(device)

    def make_frames():
        if scene4d is None:
            return render_frames(g, cams, args.background, args.backend)
        from lyra.render.flythrough import dynamic_frames

        n = len(cams)
        times = torch.full((n,), args.time) if args.time is not None else torch.linspace(0.0, 1.0, n)
        return dynamic_frames(scene4d, cams, times, args.background, args.backend)

    if args.output:
        frames = make_frames()
        if args.frames:
            kept: list = []

            def tee():
                for f in frames:
                    kept.append(to_uint8(f))  # a quarter of the float frame's memory
                    yield kept[-1]

            write_video(tee(), args.output, fps=args.fps)
            write_frames(kept, args.frames)
        else:
            write_video(frames, args.output, fps=args.fps)
        print(f"wrote {args.output} ({len(cams)} frames, {cams.width}x{cams.height})")
    else:
        write_frames(make_frames(), args.frames)
    if args.frames:
        print(f"wrote {len(cams)} PNG frames into {args.frames}")
    return 0
