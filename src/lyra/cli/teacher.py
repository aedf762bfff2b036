"""``lyra teacher IMAGE -o DIR``: one image → the teacher's six trajectory videos, side-by-side, latents."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch

from lyra.cli._common import add_device_argument, pick_device
from lyra.errors import ConfigError, OutputPathError

DESCRIPTION = (
    "Run the teacher (GEN3C design: depth → 3D cache → warp along camera trajectories → video diffusion in "
    "the tokenizer's latent space) on one image. The image is centre-cropped to the working aspect and "
    "resized (--size, default the preset's 176x320). Writes into the new folder DIR: traj_<name>.mp4 (the "
    "decoded video of each trajectory), side_by_side.mp4 (one row per trajectory: warped input | teacher), "
    "latents.safetensors (normalised latents + statistics, cameras, seed/steps), input.png, depth.png "
    "(16-bit, millimetres; reusable with --depth) and teacher.json (timings, peak memory, versions, weight "
    "hashes). DIR is written atomically: it appears complete or not at all."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "teacher",
        help="one image → six camera-controlled videos (the teacher), with latents",
        description=DESCRIPTION,
        epilog="Examples:\n  lyra teacher photo.jpg -o out/\n  lyra teacher photo.jpg -o out/ --depth depth.npy "
        "--steps 20 --seed 3\n  lyra teacher photo.jpg -o out/ --depth hf:~/models/depth-anything-small\n"
        "  lyra teacher photo.jpg -o out/ --trajectory path.json   (lyra or nerfstudio camera path)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("image", help="input image (PNG, JPEG, WebP, TIFF, ...; EXIF orientation is applied)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (must not exist or be empty)")
    p.add_argument("--depth", default="tiny", metavar="SPEC",
                   help="depth source: 'tiny' (the shipped depth net; 'tiny_photo': fine-tuned on photo-style "
                   "worlds), a .npy z-depth or 16-bit .png (mm) of the "
                   "image, or hf:DIR (a local transformers depth model folder). Default tiny")
    p.add_argument("--steps", type=int, default=35, help="sampler steps (default 35, as GEN3C)")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (default 1.0)")
    p.add_argument("--seed", type=int, default=0, help="random seed: trajectory distances and noise (default 0)")
    p.add_argument("--movement", type=float, default=1.0, help="GEN3C movement factor of the trajectories (default 1)")
    p.add_argument("--size", default=None, metavar="HxW",
                   help="working size, both multiples of 16 (default: the preset's, 176x320 for tiny)")
    p.add_argument("--fov", type=float, default=None,
                   help="vertical field of view of the input image in degrees (default 50, as the worlds)")
    p.add_argument("--trajectory", default=None, metavar="FILE",
                   help="one camera path (lyra JSON or nerfstudio transforms.json) of 1 + 8k cameras instead of the "
                   "six GEN3C trajectories; its first camera is the input view")
    p.add_argument("--preset", default="tiny", choices=("tiny", "official"), help="teacher preset (default tiny)")
    p.add_argument("--weights", default=None, metavar="DIR",
                   help="teacher weights folder (default: the preset's shipped weights)")
    p.add_argument("--fps", type=float, default=24.0, help="frame rate of the videos (default 24)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_argument(p)
    p.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` → ``(height, width)``; ConfigError unless both are positive multiples of 16."""
    from lyra.inputs import parse_size as parse

    return parse(text, 16)


def check_new_dir(path: str | os.PathLike) -> Path:
    """OutputPathError unless ``path`` can become a new folder (absent or empty; parent exists, writable)."""
    p = Path(path)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise OutputPathError(f"{p}: already exists and is not an empty folder (choose another -o)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(f"{p}: folder {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK):
        raise OutputPathError(f"{p}: folder {parent} is not writable")
    return p


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def versions() -> dict[str, Any]:
    from lyra import __version__
    from lyra.train.runtime import package_version

    return {"lyra": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "diffusers": package_version("diffusers"), "platform": platform.platform()}


def side_by_side(warped: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Frames ``[T, V·H, 2·W, 3]``: one row per trajectory, warped input (black = no data) | teacher."""
    rows = torch.cat([warped, teacher], dim=-1)  # [V, T, 3, H, 2W]
    V, T, C, H, W2 = rows.shape
    return rows.permute(1, 0, 3, 4, 2).reshape(T, V * H, W2, C)


def stage(name: str, seconds: float) -> None:
    print(f"  {name:<13} {seconds:7.2f} s", flush=True)


def run(args: argparse.Namespace) -> int:
    from lyra.fileio import atomic_dir
    from lyra.inputs import default_camera, fit_cameras_to_size, fit_depth_to_size, fit_to_size, load_image
    from lyra.teacher.depth import read_depth_file, write_depth_png
    from lyra.teacher.pipeline import TeacherPipeline
    from lyra.weights.hub import get_preset

    t_start = time.perf_counter()
    if args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be non-negative, got {args.seed}")
    from lyra.cli._common import check_fps

    check_fps(args.fps)
    if not args.movement > 0:
        raise ConfigError(f"--movement must be positive, got {args.movement}")
    out = check_new_dir(args.output)
    _, preset_height, preset_width = get_preset("official" if args.preset == "official" else "tiny").size
    height, width = parse_size(args.size) if args.size else (preset_height, preset_width)

    # ---- inputs (all checked before any model is loaded)
    t0 = time.perf_counter()
    original = load_image(args.image)
    image, note = fit_to_size(original, height, width)
    depth_map = None
    depth_spec = args.depth
    if Path(args.depth).suffix.lower() in (".npy", ".png") and not args.depth.startswith("hf:"):
        raw_depth = read_depth_file(args.depth)
        if tuple(raw_depth.shape) != tuple(original.shape[-2:]):
            raise ConfigError(f"--depth {args.depth}: the depth map is {raw_depth.shape[1]}x{raw_depth.shape[0]} but "
                              f"the image is {original.shape[2]}x{original.shape[1]}; give one of the image's size")
        depth_map = fit_depth_to_size(raw_depth, height, width)
        depth_spec = None
    trajectories, camera, names = None, None, None
    if args.trajectory:
        from lyra.geometry.trajectories import load_camera_path

        path = load_camera_path(args.trajectory)
        n = len(path)
        if len(path.shape) != 1 or (n - 1) % 8:
            raise ConfigError(f"--trajectory {args.trajectory}: {n} cameras; the teacher needs 1 + 8k (9, 17, 25, ...)")
        trajectories = fit_cameras_to_size(path, height, width).reshape(1, n)
        names = (Path(args.trajectory).stem,)
    elif args.fov is not None:
        camera = default_camera(height, width, args.fov)
    t_inputs = time.perf_counter() - t0
    print(f"{args.image}: {original.shape[2]}x{original.shape[1]}" + (f", {note}" if note else ""), flush=True)

    # ---- models
    device = pick_device(args.device)
    pipe = TeacherPipeline.from_preset(args.preset, weights=args.weights, depth=depth_spec, device=device)
    stage("load", pipe.load_seconds)

    output = pipe(image, depth=depth_map, camera=camera, trajectories=trajectories, names=names, seed=args.seed,
                  steps=args.steps, guidance=args.guidance, movement=args.movement, progress=not args.no_progress)
    tm = output.timings
    for key in ("depth", "trajectories", "warp_encode"):
        stage(key.replace("_", "+"), tm[key])
    stage("denoise", tm["denoise"])
    print(f"  ({args.steps} steps × {len(output.names)} trajectories: {tm['denoise'] / args.steps:.3f} s per step)",
          flush=True)
    videos = pipe.decode(output)
    stage("decode", tm["decode"])

    # ---- files
    t0 = time.perf_counter()
    from lyra.media import write_image, write_video

    with atomic_dir(out) as tmp:
        files = []
        for v, name in enumerate(output.names):
            files.append(write_video(videos[v].permute(0, 2, 3, 1), tmp / f"traj_{name}.mp4", args.fps))
        files.append(write_video(side_by_side(output.conditions.rgb, videos), tmp / "side_by_side.mp4", args.fps))
        files.append(output.save(tmp / "latents.safetensors"))
        files.append(write_image(output.image.permute(1, 2, 0), tmp / "input.png"))
        files.append(write_depth_png(tmp / "depth.png", output.depth))
        timings = {"inputs": t_inputs, "load": pipe.load_seconds, **tm,
                   "write": time.perf_counter() - t0}
        timings["total"] = time.perf_counter() - t_start
        record = {
            "image": str(args.image), "input_size": [int(original.shape[1]), int(original.shape[2])],
            "fit": note, "size": [height, width], "frames": output.num_frames, "trajectories": list(output.names),
            "seed": args.seed, "steps": args.steps, "guidance": args.guidance, "movement": args.movement,
            "center_depth": None if math.isnan(output.center_depth) else output.center_depth,
            "depth": args.depth, "trajectory_file": args.trajectory, "device": str(device),
            "threads": torch.get_num_threads(), "timings_s": {k: round(v, 4) for k, v in timings.items()},
            "peak_rss_mib": round(peak_rss_mib(), 1), "model": pipe.describe(), "versions": versions(),
        }
        (tmp / "teacher.json").write_text(json.dumps(record, indent=2) + "\n")
        files.append(tmp / "teacher.json")
    stage("write", timings["write"])
    total = time.perf_counter() - t_start
    print(f"wrote {out}/ ({', '.join(f.name for f in files)}) in {total:.1f} s on {device}; "
          f"peak RSS {peak_rss_mib():.0f} MiB", flush=True)
    return 0
