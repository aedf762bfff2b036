"""``lyra eval mesh``: exported meshes (and the Gaussians' centres) against the test worlds' true surfaces."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import time
from pathlib import Path

from lyra.cli._common import add_device_argument, pick_device
from lyra.errors import ConfigError, OutputPathError

DESCRIPTION = (
    "Geometric accuracy on the first N held-out test worlds (lyra.world split 'test'): each world's input image "
    "goes through lyra.pipeline.ScenePipeline with the teacher following the world's six GT trajectories (as lyra "
    "eval scene); the scene is meshed as `lyra mesh` does (depth fused over the same cameras) and the mesh and the "
    "Gaussians' centres are compared with points on the world's analytic surfaces ray-cast from every GT camera: "
    "Chamfer distance and F-score at 1/2/5 %% of the world's centre depth, within 3 centre depths of the input "
    "camera. Generated scenes are cached in --cache (reused on the next run). Writes mesh_eval.md and "
    "mesh_eval.json into --out."
)


def register_mesh_eval(esub: argparse._SubParsersAction) -> None:
    t = esub.add_parser("mesh", help="mesh and Gaussian-centre accuracy (Chamfer, F-score) vs the worlds' surfaces",
                        description=DESCRIPTION)
    t.add_argument("--worlds", type=int, default=32, help="number of test worlds (default 32)")
    t.add_argument("--steps", type=int, default=35, help="sampler steps (default 35)")
    t.add_argument("--seed", type=int, default=0, help="sampling seed, mixed with each world seed (default 0)")
    t.add_argument("--depth", default="tiny", choices=("tiny", "exact"),
                   help="input depth: the tiny depth net's estimate (default) or the world's exact depth")
    t.add_argument("--world-preset", default="tiny", help="lyra.world preset (default tiny)")
    t.add_argument("--cache", default="mesh_eval_cache", metavar="DIR",
                   help="folder of generated scenes (created; reused when complete). Default ./mesh_eval_cache")
    t.add_argument("--out", default="docs/mesh_eval", metavar="DIR", help="output folder (default docs/mesh_eval)")
    add_device_argument(t)
    t.set_defaults(func=run_mesh_eval)


def run_mesh_eval(args: argparse.Namespace) -> int:
    from lyra.eval.mesh_benchmark import evaluate_cached_world, markdown_report, summary
    from lyra.eval.scene_benchmark import SAMPLER_SALT, check_options
    from lyra.eval.world_cache import cache_world
    from lyra.fileio import atomic_path
    from lyra.mesh import DEFAULT_RESOLUTION
    from lyra.pipeline import ScenePipeline
    from lyra.seeds import mix_seed
    from lyra.world import get_preset

    seeds = check_options(args.worlds, args.steps, args.seed, "left")
    preset = get_preset(args.world_preset)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"--out {out}: exists and is not a folder")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise OutputPathError(f"--out {out}: folder {out.parent} does not exist (create it first)")
    cache = Path(args.cache)
    if cache.exists() and not cache.is_dir():
        raise ConfigError(f"--cache {cache}: exists and is not a folder")
    device = pick_device(args.device)
    exact = args.depth == "exact"
    pipe = ScenePipeline.from_preset("tiny", depth=None if exact else "tiny", device=device)
    rows = []
    t_all = time.perf_counter()
    for s in seeds:
        folder = cache_world(pipe, s, cache, preset.name, args.steps, mix_seed(args.seed, s, SAMPLER_SALT) % 2**31,
                             exact)
        row = evaluate_cached_world(folder)
        rows.append(row)
        m, g = row["mesh"], row["gaussians"]
        print(f"  world {s:>3} ({row['family']:7}): mesh Chamfer {m['chamfer']:.3f} m, F@5% {m['fscore'][2]:.3f}; "
              f"Gaussians Chamfer {g['chamfer']:.3f} m, F@5% {g['fscore'][2]:.3f}", flush=True)
    result = {"setting": {"worlds": len(rows), "seeds": seeds, "world_preset": preset.name, "steps": args.steps,
                          "seed": args.seed, "depth": "exact" if exact else "estimate",
                          "mesh": {"resolution": DEFAULT_RESOLUTION,
                                   "depth_source": rows[0]["mesh_stats"]["depth_source"]},
                          "command": f"lyra eval mesh --worlds {args.worlds} --steps {args.steps} --seed {args.seed} "
                          f"--depth {args.depth}", "device": str(device),
                          "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                          "seconds": time.perf_counter() - t_all},
              "worlds": rows, "mean": summary(rows)}
    out.mkdir(exist_ok=True)
    with atomic_path(out / "mesh_eval.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float) + "\n")
    with atomic_path(out / "mesh_eval.md") as tmp:
        tmp.write_text(markdown_report(result))
    mm = result["mean"]
    print(f"mean over {len(rows)} worlds: mesh Chamfer {mm['mesh']['chamfer']:.3f} m, "
          f"F@5% {mm['mesh']['fscore'][2]:.3f}; "
          f"Gaussians Chamfer {mm['gaussians']['chamfer']:.3f} m, F@5% {mm['gaussians']['fscore'][2]:.3f}. "
          f"Wrote {out}/mesh_eval.md, .json", flush=True)
    return 0
