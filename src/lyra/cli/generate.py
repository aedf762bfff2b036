"""``lyra generate IMAGE -o scene.ply``: one image (or a text prompt) → a 3D Gaussian Splatting scene."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lyra.cli._common import add_device_argument, pick_device
from lyra.cli.generate_video import add_video_arguments, check_common_options, reject_video_options, run_video
from lyra.errors import ConfigError, OutputPathError

DESCRIPTION = (
    "Turn one image into an explicit 3D Gaussian Splatting scene: depth → 3D point cache → the teacher generates "
    "videos along six camera trajectories in the tokenizer's latent space → the student decodes those latents into "
    "pixel-aligned 3D Gaussians → pruned to the 20 % most opaque (Lyra's default). The image is centre-cropped to "
    "the working aspect and resized (--size, default the preset's 176x320). The scene file's format follows its "
    "extension (.ply INRIA 3DGS, .splat, .spz). Progress: one line per stage with its time, on stderr. Every "
    "output is written atomically; a failed run leaves no partial file. A video (or a folder of numbered frames) "
    "instead gives 4D Gaussians: one Gaussian set per output time, written into the folder -o (see 'video input')."
)

EPILOG = """\
Examples:
  lyra generate photo.jpg -o scene.ply
  lyra generate photo.jpg -o scene.spz --video flythrough.mp4 --cameras cams.json --seed 3
  lyra generate photo.jpg -o scene.ply --steps 20 --size 176x320 --depth depth.npy
  lyra generate photo.jpg -o scene.ply --trajectory path.json     (your camera path, added to the six)
  lyra generate photo.jpg -o scene.ply --trajectory trajectory.npz  (a Lyra-2 path: w2c + intrinsics)
  lyra generate photo.jpg -o scene.ply --fov 65                     (or --focal-px 1450, --intrinsics fx,fy,cx,cy)
  lyra generate photo.jpg -o scene.ply --student runs/student/export
  lyra generate photo.jpg -o scene.ply --preset official --weights ~/lyra-official
  lyra generate --prompt "a cosy room" --t2i-model ~/models/sd-turbo --t2i-steps 1 --t2i-guidance 0 -o scene.ply
Then: lyra view scene.ply --cameras cams.json   |   lyra render scene.ply -o orbit.mp4

Video → 4D Gaussians (a folder: t000.ply, t001.ply, ... + index.json + cameras.json):
  lyra generate clip.mp4 -o scene4d/ --video fly.mp4      (fly-through with time advancing)
  lyra generate clip.mov -o scene4d/ --times 9 --start 2 --duration 5 --format spz
  lyra generate frames/ -o scene4d/ --input-cameras poses.json   (numbered frames; known camera poses)
Then: lyra view scene4d/   (a time slider and a play button swap the splats)

Weights: the tiny preset uses the shipped models under src/lyra/weights/ (student: student_tiny/, from
`lyra train student`; or --student DIR). --preset official needs --weights DIR laid out as
DIR/teacher/ (converted GEN3C denoiser), DIR/tokenizer/ (Cosmos CV8x8x8, diffusers format) and
DIR/lyra_static.pt (or decoder.safetensors / student/). See `python -c "import lyra.pipeline; help(lyra.pipeline)"`.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate",
                       help="one image → a 3D Gaussian Splatting scene (.ply/.splat/.spz); a video → 4D Gaussians",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", nargs="?", default=None,
                   help="input image (PNG, JPEG, WebP, TIFF, ...; EXIF orientation applied); or a video / a folder of "
                   "numbered frames (see 'video input'); omit with --prompt")
    p.add_argument("-o", "--output", required=True, metavar="SCENE",
                   help="scene file: .ply (INRIA 3DGS), .splat or .spz; for a video, a folder (new, empty, or a "
                   "4D scene written before, which is replaced)")
    p.add_argument("--video", default=None, metavar="FILE",
                   help="also render a fly-through (.mp4/.mov/.mkv/.gif): the six trajectories, then an orbit (for a "
                   "video input, time advances along each trajectory and around the orbit)")
    p.add_argument("--mesh", default=None, metavar="MESH",
                   help="also write a vertex-coloured mesh of the scene (.glb, .obj, .ply, .usd, .usda, .usdc), fused "
                   "from depth along the generated trajectories, as `lyra mesh` does (static scenes only)")
    from lyra.cli.mesh import add_mesh_arguments

    add_mesh_arguments(p, prefix="mesh-")
    p.add_argument("--orbit-frames", type=int, default=48, help="orbit frames at the end of --video (default 48)")
    p.add_argument("--fps", type=float, default=24.0, help="frame rate of the videos (default 24)")
    p.add_argument("--cameras", default=None, metavar="FILE.json",
                   help="also write the trajectory cameras (lyra camera-path JSON, for lyra view/render)")
    p.add_argument("--seed", type=int, default=0, help="random seed: trajectory distances and noise (default 0)")
    p.add_argument("--steps", type=int, default=None,
                   help="teacher sampler steps (default: the count a few-step teacher records, else 35 as GEN3C)")
    p.add_argument("--size", default=None, metavar="HxW",
                   help="working size, both multiples of 16 (default: the photo's aspect, portrait included, at about "
                   "the preset's pixel count: 176x320 for a 16:9 photo with tiny, 320x176 for 9:16, 208x272 for 4:3)")
    p.add_argument("--input-resolution", type=int, default=None, metavar="PX",
                   help="long side of the input-view Gaussians: one Gaussian per pixel of the photo (its crop to the "
                   "working aspect, never above its own resolution), in front of the generated ones, so the scene "
                   "keeps the photo's detail where it was taken. Default 1024 for tiny, 0 (off) for official; 0: the "
                   "generated Gaussians alone. For a video, each output time gets the pixel Gaussians of its nearest "
                   "frame at the working size (0: off)")
    p.add_argument("--trajectory", default=None, metavar="FILE",
                   help="your own camera path (lyra JSON, nerfstudio transforms.json or Lyra-2 trajectory.npz with "
                   "w2c + intrinsics arrays), ADDED to the six GEN3C trajectories: re-expressed relative to its "
                   "first camera (= the input view), in the depth's units, resampled to the six's frame count. Its "
                   "first camera's intrinsics are the input camera's unless --fov/--focal-px/--intrinsics is given")
    p.add_argument("--trajectory-only", action="store_true",
                   help="use --trajectory instead of the six GEN3C trajectories (it then needs 1 + 8k cameras; fewer "
                   "views, fewer Gaussians)")
    cam = p.add_mutually_exclusive_group()
    cam.add_argument("--fov", type=float, default=None, metavar="DEG",
                     help="vertical field of view of the photo in degrees (default: the first camera of --trajectory, "
                     "else the photo's EXIF focal length, else 50)")
    cam.add_argument("--focal-px", type=float, default=None, metavar="F",
                     help="focal length in pixels of the photo as it is (square pixels, centred principal point)")
    cam.add_argument("--intrinsics", default=None, metavar="fx,fy,cx,cy|FILE",
                     help="pixel intrinsics of the photo as it is: 'fx,fy,cx,cy', or a file (JSON with fx, fy, cx, cy "
                     "or K; or text with 4 numbers or a 3x3 matrix). They follow the crop and resize to the working "
                     "size")
    p.add_argument("--no-exif", action="store_true",
                   help="ignore the photo's EXIF focal length (FocalLengthIn35mmFilm, or FocalLength + "
                   "FocalPlaneXResolution)")
    p.add_argument("--depth", default="tiny", metavar="SPEC",
                   help="depth source: 'tiny' (shipped depth net, trained on the procedural worlds), 'tiny_photo' "
                   "(the same net fine-tuned on photo-style worlds: better on real photographs, worse on the "
                   "procedural benchmark), a .npy z-depth or 16-bit .png (mm) of the image, or hf:DIR (a local "
                   "transformers depth model, or a lyra train depth export). Default tiny")
    p.add_argument("--student", default=None, metavar="DIR",
                   help="student export folder (lyra train student) or official decoder file (default: shipped)")
    p.add_argument("--preset", default="tiny", choices=("tiny", "official"), help="model preset (default tiny)")
    p.add_argument("--weights", default=None, metavar="DIR", help="weights folder (required for --preset official)")
    p.add_argument("--quantize", default=None, choices=("fp8", "int8"),
                   help="memory mode: keep the teacher denoiser's large linear weights in 8 bits (fp8 e4m3 or int8, "
                   "one scale per output row; half the memory of bf16, about 2.5 %% (fp8) / 0.4 %% (int8) error per "
                   "layer); with --preset official on CUDA it is what fits a 16 GB card. Image inputs only")
    p.add_argument("--teacher-videos", default=None, metavar="DIR",
                   help="also decode the teacher's latents and write traj_<name>.mp4 into this new folder")
    p.add_argument("--prompt", default=None, metavar="TEXT",
                   help="instead of IMAGE: make the input image from this text first, with --t2i-model, at the "
                   "working size (--size, else the preset's), seeded by --seed; the prompt and model are recorded "
                   "in the run's metadata (generate.json with --teacher-videos)")
    p.add_argument("--t2i-model", default=None, metavar="DIR",
                   help="local diffusers text-to-image pipeline folder with a model_index.json (Stable Diffusion, "
                   "SDXL, SD3, FLUX, ... as saved by save_pretrained or downloaded beforehand); loaded with "
                   "AutoPipelineForText2Image from local files only (nothing is downloaded), float32 on the CPU, "
                   "bfloat16/float16 on a GPU. lyra's tests run this path with a tiny random Stable Diffusion "
                   "pipeline; for real images pass a real model's folder")
    p.add_argument("--t2i-steps", type=int, default=None, metavar="N",
                   help="text-to-image sampler steps (default: the pipeline's own; 1-4 for turbo models)")
    p.add_argument("--t2i-guidance", type=float, default=None, metavar="G",
                   help="text-to-image guidance scale (default: the pipeline's own; 0 for sd-turbo/sdxl-turbo)")
    p.add_argument("--backend", choices=("auto", "torch", "gsplat"), default="auto",
                   help="rasterizer for --video: gsplat on CUDA when present (auto), or the pure-torch reference")
    p.add_argument("--no-progress", action="store_true", help="no per-stage lines and no progress bars")
    add_device_argument(p)
    add_video_arguments(p)
    p.set_defaults(func=run)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse unknown extensions and unwritable places before any work is done."""
    from lyra.cli.teacher import check_new_dir
    from lyra.fileio import check_output_dir
    from lyra.gaussians.io import format_for
    from lyra.media import VIDEO_EXTENSIONS

    format_for(args.output, OutputPathError)
    check_output_dir(args.output)
    if Path(args.output).is_dir():
        raise OutputPathError(f"{args.output}: is a folder; give a scene file name such as scene.ply")
    if args.video:
        if Path(args.video).suffix.lower() not in VIDEO_EXTENSIONS:
            raise OutputPathError(f"{args.video}: unknown video extension; use one of {', '.join(VIDEO_EXTENSIONS)}")
        check_output_dir(args.video)
    if args.cameras:
        if Path(args.cameras).suffix.lower() != ".json":
            raise OutputPathError(f"{args.cameras}: the cameras file must end in .json")
        check_output_dir(args.cameras)
    if args.teacher_videos:
        check_new_dir(args.teacher_videos)
    paths = [Path(p).resolve() for p in (args.output, args.video, args.cameras) if p]
    if len(set(paths)) != len(paths):
        raise OutputPathError("two outputs have the same path; give each its own file")


def run(args: argparse.Namespace) -> int:
    import time

    from lyra.cli.teacher import parse_size
    from lyra.inputs_text import image_from_prompt
    from lyra.pipeline import generate

    t_start = time.perf_counter()
    # ---- options and outputs, all checked before any model is loaded
    if (args.image is None) == (args.prompt is None):
        raise ConfigError("give either an input IMAGE or --prompt TEXT (with --t2i-model DIR)")
    if args.prompt is None and (args.t2i_model or args.t2i_steps is not None or args.t2i_guidance is not None):
        raise ConfigError("--t2i-model, --t2i-steps and --t2i-guidance are only used with --prompt TEXT")
    from lyra.inputs import is_video_input

    if args.image is not None and is_video_input(args.image):
        if args.mesh or args.mesh_collider:
            raise ConfigError("--mesh/--mesh-collider apply to image inputs (a static scene); mesh a 4D scene's "
                              "frame with `lyra mesh FRAME.ply`")
        used = [f for f, v in (("--fov", args.fov), ("--focal-px", args.focal_px), ("--intrinsics", args.intrinsics),
                               ("--trajectory-only", args.trajectory_only or None)) if v is not None]
        if args.quantize is not None:
            raise ConfigError("--quantize applies to image inputs (the static teacher's denoiser)")
        if used:
            raise ConfigError(f"{', '.join(used)} apply to an image; for a video give --input-cameras poses.json")
        return run_video(args)  # 4D Gaussians: lyra.cli.generate_video
    reject_video_options(args)
    check_common_options(args, "lyra_static.pt")
    if args.mesh or args.mesh_collider:
        from lyra.cli.mesh import check_mesh_options

        check_mesh_options(args.mesh, args.mesh_collider, args.mesh_collider_faces, args.mesh_max_faces,
                           args.mesh_resolution)
    _check_outputs(args)
    size = parse_size(args.size) if args.size else None
    progress = not args.no_progress

    image = args.image
    if args.prompt is not None:
        from lyra.weights.hub import get_preset

        h, w = size or get_preset(args.preset).size[1:]
        t0 = time.perf_counter()
        image = image_from_prompt(args.prompt, args.t2i_model, h, w, seed=args.seed, steps=args.t2i_steps,
                                  guidance=args.t2i_guidance, device=pick_device(args.device), progress=progress)
        t2i_seconds = time.perf_counter() - t0
        if progress:
            print(f"  {'text_to_image':<14} {t2i_seconds:8.2f} s", file=sys.stderr)

    if args.trajectory_only and not args.trajectory:
        raise ConfigError("--trajectory-only needs --trajectory FILE")
    scene = generate(image, preset=args.preset, weights=args.weights, seed=args.seed, steps=args.steps, size=size,
                     trajectory=args.trajectory, depth=args.depth, device=args.device, progress=progress,
                     decode_videos=bool(args.teacher_videos), student=args.student, fov=args.fov,
                     focal_px=args.focal_px, intrinsics=args.intrinsics, exif=not args.no_exif,
                     replace_trajectories=args.trajectory_only, input_resolution=args.input_resolution,
                     quantize=args.quantize)
    m = scene.metadata
    if args.prompt is not None:
        m["input"] = "prompt"
        m["prompt"] = {"text": args.prompt, "t2i_model": str(Path(args.t2i_model).expanduser().resolve()),
                       "steps": args.t2i_steps, "guidance": args.t2i_guidance, "seed": args.seed,
                       "seconds": round(t2i_seconds, 4)}
    if m.get("fit"):
        print(f"{args.image or 'prompt image'}: {m['fit']}")
    cam_m = m.get("camera") or {}
    if cam_m:
        print(f"input camera: vertical field of view {cam_m['fov_y_deg']:.1f}° (fx {cam_m['fx']:.1f} px at "
              f"{m['size'][1]}x{m['size'][0]}) from {cam_m['source']}")

    # ---- files
    written = [scene.save(args.output)]
    if args.cameras:
        written.append(scene.save_cameras(args.cameras))
    if args.teacher_videos:
        from lyra.fileio import atomic_dir
        from lyra.media import write_video

        with atomic_dir(args.teacher_videos) as tmp:
            for v, name in enumerate(scene.names):
                write_video(scene.videos[v].permute(0, 2, 3, 1), tmp / f"traj_{name}.mp4", args.fps)
            (tmp / "generate.json").write_text(json.dumps(m, indent=2) + "\n")
        written.append(Path(args.teacher_videos))
    if args.mesh or args.mesh_collider:
        from lyra.cli.mesh import write_meshes

        st = write_meshes(scene.gaussians, scene.cameras, args.mesh, args.mesh_collider, args.mesh_collider_faces,
                          args.mesh_max_faces, args.mesh_resolution, args.mesh_depth_source)
        written += [Path(p) for p in (args.mesh, args.mesh_collider) if p]
        print(f"wrote mesh {args.mesh or ''} {args.mesh_collider or ''} ({st['visual_faces']:,} / "
              f"{st['collider_faces']:,} triangles)".replace("  ", " "))
    if args.video:
        import dataclasses

        from lyra.media import write_video
        from lyra.pipeline import video_gaussians
        from lyra.render.flythrough import flythrough

        # the input-view Gaussians at the video's (working) size: no aliasing, fast
        shown = dataclasses.replace(scene, gaussians=video_gaussians(scene))
        cams, frames = flythrough(shown, args.orbit_frames, pick_device(args.device), backend=args.backend,
                                  progress=progress)
        write_video(frames, args.video, fps=args.fps)
        written.append(Path(args.video))
        print(f"wrote {args.video} ({len(cams)} frames, {cams.width}x{cams.height})")
    total = time.perf_counter() - t_start
    iv = m.get("input_view")
    detail = (f" + {iv['gaussians']:,} input-view Gaussians at {iv['size'][1]}x{iv['size'][0]}" if iv else "")
    print(f"wrote {args.output}: {m['gaussians']:,} Gaussians ({m['gaussians'] - (iv['gaussians'] if iv else 0):,} "
          f"generated of {m['gaussians_before_prune']:,}, pruned {m['prune_ratio']:.0%}{detail}), {len(scene.names)} "
          f"trajectories × {m['frames']} frames at "
          f"{m['size'][1]}x{m['size'][0]}, seed {m['seed']}, {m['steps']} steps, {total:.1f} s on {m['device']}"
          + (f" ({m['cpu_threads']} CPU threads)" if m.get("cpu_threads") and m["device"] == "cpu" else ""))
    return 0
