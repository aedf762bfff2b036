"""``lyra world --seed N -o DIR``: render one procedural world example (image, depth, cameras, videos)."""

from __future__ import annotations

import argparse
import time

from lyra.cli._common import add_device_argument, pick_device
from lyra.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    from lyra.world.families import FAMILIES
    from lyra.world.presets import PRESETS

    p = sub.add_parser(
        "world",
        help="render a procedural world: input image, depth, cameras and six trajectory videos",
        description="Generate the procedural world of a seed (indoor rooms or an outdoor scene), place an "
        "input camera in it and render the six GEN3C trajectories from it with exact ground truth. Writes "
        "input.png, input_depth.png (16-bit) and input_depth.npy, cameras.json and traj{0..5}_{name}.mp4 "
        "into the output folder. Seeds 0-999 are the held-out test split.",
    )
    p.add_argument("--seed", type=int, required=True, help="world seed (a non-negative integer)")
    p.add_argument("-o", "--output", required=True, help="output folder (created if missing; its parent must exist)")
    p.add_argument("--dynamic", action="store_true", help="a moving scene: frame f is rendered at time f/(T-1)")
    p.add_argument("--family", choices=FAMILIES, default=None, help="world family (default: drawn from the seed)")
    p.add_argument("--preset", choices=list(PRESETS), default="tiny",
                   help="frames and size: " + ", ".join(f"{k} {v.frames}x{v.height}x{v.width}"
                                                        for k, v in PRESETS.items()) + " (default tiny)")
    p.add_argument("--fps", type=int, default=24, help="frame rate of the MP4 videos (default 24)")
    p.add_argument("--style", choices=("classic", "photo"), default="classic",
                   help="classic (default; what every benchmark reads) or photo: photo textures, soft shadows, "
                        "indirect light, glossy and glass-like surfaces, thin structures and a camera model "
                        "(docs/worlds.md)")
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lyra.world.export import prepare_output_dir, write_example
    from lyra.world.sample import make_example

    if args.seed < 0 or args.seed >= 2**31 - 1:
        raise ConfigError(f"--seed must be in [0, 2^31 - 1), got {args.seed}")
    if args.fps <= 0:
        raise ConfigError(f"--fps must be positive, got {args.fps}")
    out = prepare_output_dir(args.output)  # fail before the (long) rendering
    device = pick_device(args.device)
    t0 = time.perf_counter()
    ex = make_example(args.seed, args.preset, args.dynamic, args.family, device, style=args.style)
    t1 = time.perf_counter()
    files = write_example(ex, out, args.preset, args.fps)
    V, T = ex.videos.shape[:2]
    kind = ("dynamic" if ex.dynamic else "static") + (", photo style" if args.style == "photo" else "")
    print(f"world seed {args.seed}: {ex.family}, {kind}, centre depth {ex.center_depth:.2f} m; "
          f"{V} trajectories x {T} frames at {ex.videos.shape[-1]}x{ex.videos.shape[-2]} rendered in "
          f"{t1 - t0:.1f} s on {device}")
    for f in files:
        print(f"  {f}")
    return 0
