"""``lyra sdg OUT_DIR``: synthetic data generation — the teacher's videos as shards for the student."""

from __future__ import annotations

import argparse
from pathlib import Path

from lyra.cli._common import add_device_argument, pick_device
from lyra.errors import ConfigError

DESCRIPTION = """\
Run the teacher over input images and write the student's training data into OUT_DIR: for every input
the six trajectory videos as raw latents, the tokenizer-decoded frames (uint8), the cameras, and a depth
estimate of every decoded frame, S scenes per shard (shard-NNNNNN.safetensors, no pickle) plus a
manifest (sdg.json). Inputs: procedural worlds of a split (default; the teacher follows each world's
ground-truth trajectory cameras, so its frames can be compared with ground truth later) or the images
of a folder (--images; the six GEN3C trajectories are drawn per image).

Dynamic scenes (--dynamic): the inputs are dynamic worlds seen as a monocular video by their static input
camera; the teacher (its dynamic fine-tune when shipped, else --teacher-weights) generates every trajectory
frame f at the video's time t_f from the dynamic 3D cache, and with motion reversal (default; turn it off
with --no-motion-reversal) also from the video reversed in time: 12 trajectories per scene, with the time
of every frame (key times), the input video and its depth.

Resumable: rerunning the same command skips the shards that are complete, so an interrupted run
continues without duplicates or holes; a larger --count extends the set. A folder made with other
settings is refused. Spread over GPUs with accelerate — each process makes the shards k with
k mod N = its rank, and the union equals a one-process run:

  accelerate launch --num_processes 4 -m lyra sdg OUT_DIR --count 1024
"""

EPILOG = """\
examples:
  lyra sdg data/sdg --count 64                      64 training worlds, 8 per shard
  lyra sdg data/sdg --count 128                     ... continue to 128 (same settings)
  lyra sdg data/val --split val --count 16 --store-gt
  lyra sdg data/mine --images photos/ --steps 35    your own photos (then: lyra train student --data data/mine
                                                    --init-from src/lyra/weights/student_tiny --steps 200 ...)
  lyra sdg data/dyn --dynamic --teacher-weights runs/teacher_dyn/export --count 64
Read the shards with lyra.distill.ShardDataset(OUT_DIR).
"""


def register(sub: argparse._SubParsersAction) -> None:
    from lyra.world.presets import PRESETS as WORLD_PRESETS

    p = sub.add_parser("sdg", help="generate the student's training data from the teacher (shards)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created if missing; its parent must exist)")
    p.add_argument("--count", type=int, default=None,
                   help="number of inputs from --start (default: 8 worlds; all images of --images)")
    p.add_argument("--start", type=int, default=0, help="first input: index into the split's seeds or the sorted "
                   "image list (default 0). Part of the data set's identity: keep it when resuming")
    p.add_argument("--split", default="train", choices=("train", "val", "test"),
                   help="procedural world split (train: seeds from 1,000,000; val: 1000-1999; test: 0-999). "
                   "Default: train")
    p.add_argument("--images", metavar="DIR", default=None,
                   help="use the photos of this folder (sorted by name; png, jpg, webp, bmp, tif) instead of "
                   "procedural worlds: each is centre-cropped to --size, its depth estimated, its camera taken from "
                   "its EXIF focal length (else a 50° vertical field of view), as lyra generate takes a photo")
    p.add_argument("--size", metavar="HxW", default=None,
                   help="with --images: the working size HEIGHTxWIDTH, multiples of 16 (default: the teacher "
                   "preset's, 176x320 for tiny, the size lyra generate works at)")
    p.add_argument("--steps", type=int, default=None,
                   help="teacher sampling steps (default: the count a few-step teacher records, 4 for the shipped "
                   "tiny one; else 35, as GEN3C)")
    p.add_argument("--shard-size", type=int, default=8, help="scenes per shard file (default 8)")
    p.add_argument("--composite", action="store_true",
                   help="student targets composited in pixel space: the warped input where the warp has data, the "
                   "teacher's frames only in its holes (the latents stay the teacher's)")
    p.add_argument("--gt-depth", action="store_true",
                   help="worlds: lift the input image with the world's exact depth instead of the depth estimate")
    p.add_argument("--store-gt", action="store_true",
                   help="worlds: also store the exact world depth of every frame (key gt_depth)")
    p.add_argument("--store-plucker", action="store_true",
                   help="also store every scene's Plücker latents (key plucker, fp16, about 1 MB per tiny scene), "
                   "computed with the teacher's tokenizer, so that `lyra train student` does not compute them "
                   "(12 tokenizer encodes per scene on first use)")
    p.add_argument("--teacher-weights", metavar="DIR", default=None,
                   help="teacher denoiser folder (default: the preset's shipped weights)")
    p.add_argument("--preset", default="tiny", choices=("tiny", "official"), help="teacher preset (default tiny)")
    p.add_argument("--world-preset", default=None, choices=list(WORLD_PRESETS),
                   help="world size (default: the teacher preset's; micro is for quick checks)")
    p.add_argument("--depth", default="tiny", metavar="SPEC",
                   help="depth estimator for the input images and the decoded frames: a preset (tiny) or a local "
                   "transformers depth model folder (default tiny)")
    p.add_argument("--seed", type=int, default=0,
                   help="base seed: scene i's noise seed is mixed from it and the world seed / image index (default 0)")
    p.add_argument("--batch", type=int, default=None,
                   help="scenes per teacher batch, within a shard (default: 1 on the CPU, the shard size on CUDA)")
    p.add_argument("--rank", type=int, default=None,
                   help="this process's share without a launcher (with --world-size): it makes the shards k with "
                   "k mod N = rank (e.g. several processes on one GPU, or a job array); default: from accelerate")
    p.add_argument("--world-size", type=int, default=None, help="number of shares N (with --rank)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="wall-time budget: start no new shard after it (what is written is complete; rerun the same "
                   "command to continue)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic worlds from their input video (dynamic teacher; per-frame times in the shards)")
    p.add_argument("--motion-reversal", action=argparse.BooleanOptionalAction, default=None,
                   help="with --dynamic: also generate the reversed video (12 trajectories per scene; default on)")
    add_device_argument(p)
    p.set_defaults(func=run)


def _tokenizer_weights(preset: str, dynamic: bool = False) -> Path | None:
    """Shipped weights folder of the tokenizer the preset's static (or dynamic) teacher reads (``None``: official)."""
    from lyra.tokenizer.tokenizer import preset_weights_path
    from lyra.weights.hub import get_preset

    return preset_weights_path(get_preset(preset).tokenizer_for(dynamic))


def _depth_weights(spec: str) -> Path | None:
    from lyra.weights.hub import DEPTH_NETS, depth_net_dir

    if spec in DEPTH_NETS:
        return depth_net_dir(spec)
    p = Path(spec[3:] if spec.startswith("hf:") else spec)
    if p.is_dir():
        return p
    raise ConfigError(f"--depth {spec}: SDG needs a depth model (a preset such as tiny, or a transformers model "
                      "folder) — a depth file fits one image only")


def run(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from lyra.distill.sdg import ImageSource, PipelineTeacher, WorldSource, generate_sdg
    from lyra.pipeline_inputs import DEFAULT_STEPS
    from lyra.shards import ensure_output_dir
    from lyra.teacher.pipeline import TeacherPipeline
    from lyra.weights.hub import get_preset

    for name in ("steps", "shard_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.start < 0 or (args.count is not None and args.count < 1):
        raise ConfigError("--start must be >= 0 and --count >= 1")
    if (args.rank is None) != (args.world_size is None) or (
            args.rank is not None and not 0 <= args.rank < args.world_size):
        raise ConfigError("give --rank R and --world-size N together, with 0 <= R < N")
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise ConfigError(f"--max-minutes must be > 0, got {args.max_minutes}")
    if args.batch is not None and args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    if args.motion_reversal and not args.dynamic:
        raise ConfigError("--motion-reversal belongs with --dynamic (a video can be reversed in time, an image not)")
    if args.images and args.dynamic:
        raise ConfigError("--dynamic needs procedural worlds (videos of a folder are not an SDG source yet); "
                          "drop --images")
    if args.size is not None and not args.images:
        raise ConfigError("--size applies to --images (a procedural world's size is its --world-preset's)")
    if args.images and (args.gt_depth or args.store_gt):
        raise ConfigError("--gt-depth and --store-gt need procedural worlds (they have exact depth); drop them "
                          "with --images")
    depth_weights = _depth_weights(args.depth)
    if args.images:  # an empty folder or an unreadable photo fails here, before any model loads or folder is made
        from lyra.inputs import parse_size

        H, W = (parse_size(args.size, 16, "--size") if args.size is not None
                else get_preset(args.preset).size[1:])
        source = ImageSource(args.images, H, W)
    ensure_output_dir(args.out_dir)  # fail before loading models

    state = PartialState()
    device = state.device if state.num_processes > 1 and args.device == "auto" else pick_device(args.device)
    pipe = TeacherPipeline.from_preset(args.preset, weights=args.teacher_weights, depth=args.depth, device=device,
                                       dynamic=args.dynamic)
    steps = args.steps if args.steps is not None else (pipe.denoiser.default_steps or DEFAULT_STEPS)
    teacher = PipelineTeacher(pipe, _tokenizer_weights(args.preset, args.dynamic), depth_weights,
                              composite=args.composite)
    if not args.images:
        source = WorldSource(args.split, args.world_preset or get_preset(args.preset).world, args.gt_depth,
                             args.store_gt, device, dynamic=args.dynamic,
                             motion_reversal=args.motion_reversal is not False)
    count = args.count if args.count is not None else (len(source) - args.start if args.images else 8)
    batch = args.batch or (args.shard_size if device.type == "cuda" else 1)
    report = generate_sdg(
        args.out_dir, source, teacher, pipe.depth_estimator, preset=args.preset, start=args.start, count=count,
        shard_size=args.shard_size, steps=steps, seed=args.seed, batch_size=batch, depth_name=args.depth,
        depth_hash=teacher.weight_hashes()["depth"], device=device, progress=not args.no_progress,
        rank=args.rank, world_size=args.world_size,
        max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes,
        plucker_encoder=pipe.tokenizer if args.store_plucker else None)
    where = f" (rank {report.rank} of {report.world_size})" if report.world_size > 1 else ""
    rate = f", {report.scenes_per_min:.2f} scenes/min" if report.samples else ""
    print(f"sdg{where}: {report.samples} scenes in {len(report.written)} new shards, {len(report.skipped)} shards "
          f"already complete; {report.seconds:.1f} s{rate} on {device}"
          + ("; stopped at --max-minutes (rerun the same command to continue)" if report.stopped_early else ""))
    if report.manifest is not None:
        from lyra.shards import read_manifest

        m = read_manifest(args.out_dir)
        state_word = "complete" if m.get("complete") else "incomplete (rerun the same command to finish it)"
        print(f"  {report.manifest}: {m['num_samples']} scenes in {len(m['shards'])} shards, {state_word}")
    return 0
