"""``lyra generate VIDEO -o DIR/``: the video branch of ``lyra generate`` (4D Gaussians, one set per time).

:mod:`lyra.cli.generate` registers the options and hands a video input (a video file or a folder of numbered frames,
:func:`lyra.inputs.is_video_input`) to :func:`run_video`. Everything is checked before a frame is decoded or a model
loaded; then :func:`lyra.inputs.load_video` → :func:`lyra.pipeline.generate_dynamic` → :class:`DynamicScene` folder
(+ optional camera path and time-advancing fly-through).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from lyra.errors import ConfigError, OutputPathError

#: Options that only apply to a video input, with their "unset" value.
VIDEO_ONLY = {"times": None, "start": 0.0, "duration": None, "input_cameras": None, "format": None}


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    """The video-input options of ``lyra generate``."""
    g = p.add_argument_group(
        "video input (4D Gaussians)",
        "A video file (MP4, MOV, MKV, WebM, AVI, animated GIF, ...) or a folder of numbered frames gives one "
        "Gaussian set per output time, written into the folder -o. The video is resampled to the preset's frame "
        "count (17 for tiny) evenly in time by the frames' timestamps (variable frame rates included), each frame "
        "centre-cropped and resized like an image. Depth (--depth tiny or hf:DIR) is estimated on every frame. "
        "Uses the shipped dynamic student (src/lyra/weights/student_tiny_dynamic/) with the tiny teacher (a dynamic "
        "fine-tune in teacher_tiny_dynamic/ when present, else teacher_tiny/ on the dynamic 3D cache), or "
        "--weights DIR with DIR/teacher/ (or teacher_dynamic/) and DIR/lyra_dynamic.pt (or student_dynamic/); "
        "--student overrides the dynamic student. --video, --cameras, --seed, --steps, --size, --preset, --backend "
        "and --device work as for images.")
    g.add_argument("--times", default=None, metavar="N|T0,T1,...",
                   help="output times: a count evenly spaced over the clip (default: min(17, frames)) or a "
                   "comma-separated list in [0, 1] (0 = first frame, 1 = last)")
    g.add_argument("--start", type=float, default=0.0, metavar="SEC", help="skip this many seconds of the video")
    g.add_argument("--duration", type=float, default=None, metavar="SEC",
                   help="use this many seconds after --start (default: the rest)")
    g.add_argument("--input-cameras", default=None, metavar="FILE.json",
                   help="poses of the video's camera (lyra camera-path JSON or nerfstudio transforms.json; one per "
                   "video frame or one per resampled frame). Default: a static camera (identity pose, 50° FoV)")
    g.add_argument("--format", default=None, choices=("ply", "splat", "spz"),
                   help="file format of the per-time Gaussians in the folder (default ply)")


def reject_video_options(args: argparse.Namespace) -> None:
    """ConfigError when a video-only option is given with an image input."""
    for name, unset in VIDEO_ONLY.items():
        if getattr(args, name, unset) != unset:
            raise ConfigError(f"--{name.replace('_', '-')} applies to video inputs only")


def check_common_options(args: argparse.Namespace, decoder_file: str) -> None:
    """The checks ``lyra generate`` makes for images and videos alike (``--steps``, ``--seed``, ``--fps``,
    ``--orbit-frames``, ``--input-resolution``, ``--preset official`` with ``--weights``); ``decoder_file`` names the
    release's decoder."""
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be non-negative, got {args.seed}")
    from lyra.cli._common import check_fps

    check_fps(args.fps)
    if args.orbit_frames < 0:
        raise ConfigError("--orbit-frames must be non-negative")
    if getattr(args, "input_resolution", None) is not None and args.input_resolution < 0:
        raise ConfigError(f"--input-resolution must be >= 0 (0: off), got {args.input_resolution}")
    if args.preset == "official" and not args.weights:
        raise ConfigError(f"--preset official needs --weights DIR (DIR/teacher/, DIR/tokenizer/, DIR/{decoder_file})")


def parse_times(text: str | None) -> int | list[float] | None:
    """``--times``: ``"9"`` → 9; ``"0,0.5,1"`` → ``[0.0, 0.5, 1.0]``; ``None`` → ``None``."""
    if text is None:
        return None
    try:
        if "," not in text and "." not in text:
            return int(text)
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--times {text!r}: give a count (e.g. 9) or times in [0, 1] (e.g. 0,0.5,1)") from None


def _check_outputs(args: argparse.Namespace) -> None:
    """The output must be a folder; side files must have their extensions and writable folders."""
    from lyra.fileio import check_output_dir
    from lyra.gaussians.io import FORMATS
    from lyra.media import VIDEO_EXTENSIONS
    from lyra.scene import check_scene_output

    out = Path(args.output)
    if out.suffix.lower() in FORMATS and not out.is_dir():
        raise OutputPathError(f"{args.output}: a video gives 4D Gaussians, one file per time, written into a folder; "
                              "give a folder such as scene4d/ (choose the files' format with --format)")
    check_scene_output(out)
    out_dir = out.resolve()
    for opt, path, exts in (("--video", args.video, VIDEO_EXTENSIONS), ("--cameras", args.cameras, (".json",))):
        if not path:
            continue
        if Path(path).suffix.lower() not in exts:
            raise OutputPathError(f"{path}: {opt} must end in {' / '.join(exts)}")
        if Path(path).resolve().parent != out_dir:  # inside the output folder: it will exist
            check_output_dir(path)
    paths = [Path(p).resolve() for p in (args.output, args.video, args.cameras) if p]
    if len(set(paths)) != len(paths):
        raise OutputPathError("two outputs have the same path; give each its own")


def run_video(args: argparse.Namespace) -> int:
    """``lyra generate VIDEO -o DIR/`` (see the module doc)."""
    import lyra.pipeline as lp
    from lyra.cli._common import pick_device
    from lyra.cli.teacher import parse_size
    from lyra.geometry.trajectories import load_camera_path
    from lyra.inputs import fit_cameras_to_size, load_video
    from lyra.teacher.pipeline import SIZE_MULTIPLE
    from lyra.weights.hub import get_preset

    t_start = time.perf_counter()
    # ---- options and outputs, all checked before a frame is decoded or a model loaded
    for opt, value in (("--trajectory", args.trajectory), ("--teacher-videos", args.teacher_videos),
                       ("--prompt", args.prompt), ("--t2i-model", args.t2i_model)):
        if value:
            raise ConfigError(f"{opt} is not available with a video input")
    check_common_options(args, "lyra_dynamic.pt")
    if args.start < 0 or (args.duration is not None and args.duration <= 0):
        raise ConfigError("--start must be ≥ 0 and --duration > 0 (seconds)")
    if Path(args.depth).suffix.lower() in (".npy", ".png"):
        raise ConfigError(f"--depth {args.depth}: a depth file describes one image; for a video use an estimator "
                          "(tiny, or hf:DIR)")
    _check_outputs(args)
    num_frames, preset_height, preset_width = get_preset(args.preset).size  # the preset's working size
    height, width = parse_size(args.size) if args.size else (preset_height, preset_width)
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ConfigError(f"--size {height}x{width}: both sides must be multiples of {SIZE_MULTIPLE} (e.g. 176x320)")
    times_opt = parse_times(args.times)
    cams_file = load_camera_path(args.input_cameras).flatten() if args.input_cameras else None
    progress = not args.no_progress

    # ---- the video
    t0 = time.perf_counter()
    frames, times, info = load_video(args.image, num_frames, (height, width), start=args.start,
                                     duration=args.duration)
    if progress:
        print(f"  {'video':<14} {time.perf_counter() - t0:8.2f} s", file=sys.stderr)
    if info.get("fit"):
        print(f"{args.image}: {info['fit']}")
    input_cameras = None
    if cams_file is not None:
        n = len(cams_file)
        if n == info["source_frames"] and n != num_frames:
            cams_file = cams_file[torch.tensor(info["indices"])]
        elif n != num_frames:
            raise ConfigError(f"--input-cameras {args.input_cameras}: {n} cameras; give one per video frame "
                              f"({info['source_frames']}) or one per resampled frame ({num_frames})")
        input_cameras = fit_cameras_to_size(cams_file, height, width)

    scene = lp.generate_dynamic(frames, times, depth=args.depth, input_cameras=input_cameras, output_times=times_opt,
                                preset=args.preset, weights=args.weights, student_weights=args.student,
                                seed=args.seed, steps=args.steps, device=args.device, progress=progress,
                                metadata={"input": info},
                                input_view=None if args.input_resolution is None else args.input_resolution > 0)
    m = scene.metadata

    # ---- files
    fmt = f".{args.format or 'ply'}"
    scene.save(args.output, format=fmt)
    if args.cameras:
        from lyra.fileio import atomic_path

        with atomic_path(args.cameras) as tmp:
            tmp.write_text(json.dumps(scene.camera_path()) + "\n")
    if args.video:
        from lyra.media import write_video
        from lyra.render.flythrough import flythrough

        cams, frames = flythrough(scene, args.orbit_frames, pick_device(args.device), backend=args.backend,
                                  progress=progress)
        write_video(frames, args.video, fps=args.fps)
        print(f"wrote {args.video} ({len(cams)} frames, {cams.width}x{cams.height}, time advancing)")
    total = time.perf_counter() - t_start
    counts = m["gaussians"]
    per_time = f"{min(counts):,}" if min(counts) == max(counts) else f"{min(counts):,}–{max(counts):,}"
    span = f" ({info['duration_s']:.2f} s)" if info.get("duration_s") else ""
    print(f"wrote {args.output}: {len(scene)} times × {per_time} Gaussians ({fmt}, pruned "
          f"{m['prune_ratio']:.0%}), {len(scene.names)} trajectories × {m['frames']} frames at {width}x{height}, "
          f"from {m['frames']} of {info['source_frames']} frames of {args.image}{span}, seed {m['seed']}, "
          f"{m['steps']} steps, {total:.1f} s on {m['device']}")
    return 0
