"""``lyra convert IN OUT``: convert between splat formats (.ply, .splat, .spz, .glb, .sog)."""

from __future__ import annotations

import argparse

from lyra.errors import ConfigError
from lyra.gaussians.io import load_gaussians, save_gaussians


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a splat file to another format (.ply, .splat, .spz, .glb, .sog)",
        description="Convert a Gaussian splat file; the formats follow the extensions. "
        ".splat stores colours, opacity and rotations in 8 bits and no higher SH; .spz and .sog quantise every "
        "field; .glb (glTF KHR_gaussian_splatting) is lossless float32 in glTF's +Y-up axes "
        "(see docs/formats.md). Examples: lyra convert scene.ply scene.spz; lyra convert scene.ply scene.glb; "
        "lyra convert scene.glb scene.sog",
    )
    p.add_argument("input", help="input file (.ply, .splat, .spz, .glb or .sog)")
    p.add_argument("output", help="output file; its extension picks the format")
    p.add_argument("--spz-version", type=int, choices=(2, 3, 4), default=3,
                   help="SPZ version to write (default 3, read by most viewers; 4 is the newer container)")
    p.add_argument("--keep", type=float, default=None, metavar="RATIO",
                   help="keep only this fraction of the most opaque Gaussians, e.g. 0.2 (Lyra's pruning)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    g = load_gaussians(args.input)
    if args.keep is not None:
        if not 0.0 < args.keep <= 1.0:
            raise ConfigError(f"--keep must lie in (0, 1], got {args.keep}")
        g = g.prune(args.keep)
    options = {"spz_version": args.spz_version} if args.output.lower().endswith(".spz") else {}
    save_gaussians(g, args.output, **options)
    print(f"wrote {args.output} ({len(g):,} Gaussians)")
    return 0
