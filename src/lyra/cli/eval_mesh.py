"""``lyra eval mesh``: exported meshes (and the Gaussians' centres) against the test worlds' true surfaces."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import time
from pathlib import Path

from lyra.cli._common import add_device_argument, pick_device
from lyra.errors import ConfigError, OutputPathError

STEM = "mesh_eval"

DESCRIPTION = (
    "Geometric accuracy on the first N held-out test worlds (lyra.world split 'test'): each world's input image "
    "goes through lyra.pipeline.ScenePipeline with the teacher following the world's six GT trajectories (as lyra "
    "eval scene); the scene is meshed as `lyra mesh` does (depth fused over the same cameras) and the mesh and the "
    "Gaussians' centres are compared with points on the world's analytic surfaces ray-cast from every GT camera: "
    "Chamfer distance and F-score at 1/2/5 % of the world's centre depth, within 3 centre depths of the input "
    "camera. Generated scenes are cached in --cache (reused on the next run with the same settings and weights). "
    "Writes mesh_eval.md and mesh_eval.json into --out, again after every world (a run cut short keeps the worlds "
    "it finished; 'missing' lists the others). A long run splits into parts run side by side and joined: "
    "  lyra eval mesh --first 0 --worlds 16 --out p0 & lyra eval mesh --first 16 --worlds 16 --out p1; "
    "  lyra eval mesh --merge p0 p1 --out docs/mesh_eval   (scripts/eval_mesh_gpu.sh does this on a GPU machine)."
)


def register_mesh_eval(esub: argparse._SubParsersAction) -> None:
    t = esub.add_parser("mesh", help="mesh and Gaussian-centre accuracy (Chamfer, F-score) vs the worlds' surfaces",
                        description=DESCRIPTION)
    t.add_argument("--worlds", type=int, default=32, help="number of test worlds (default 32)")
    t.add_argument("--first", type=int, default=0, metavar="K",
                   help="start at the K-th test world (default 0): split a run into parts, e.g. in parallel, and "
                   "join their --out folders with --merge")
    t.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                   help="join the reports of the parts of a split run (their --out folders) into one in --out; "
                   "nothing is evaluated")
    t.add_argument("--steps", type=int, default=35, help="sampler steps (default 35)")
    t.add_argument("--seed", type=int, default=0, help="sampling seed, mixed with each world seed (default 0)")
    t.add_argument("--depth", default="tiny", choices=("tiny", "exact"),
                   help="input depth: the tiny depth net's estimate (default) or the world's exact depth")
    t.add_argument("--student", default=None, metavar="DIR",
                   help="student export folder (default: the shipped src/lyra/weights/student_tiny)")
    t.add_argument("--weights", default=None, metavar="DIR",
                   help="weights folder (teacher/, tokenizer/, student/; or a teacher folder) as lyra generate")
    t.add_argument("--world-preset", default="tiny", help="lyra.world preset (default tiny)")
    t.add_argument("--cache", default="mesh_eval_cache", metavar="DIR",
                   help="folder of generated scenes (created; a world is reused when made with the same settings "
                   "and weights). Default ./mesh_eval_cache")
    t.add_argument("--out", default="docs/mesh_eval", metavar="DIR",
                   help="output folder (created if missing; its parent must exist). Default docs/mesh_eval")
    add_device_argument(t)
    t.set_defaults(func=run_mesh_eval)


def _print_mean(mean: dict, n: int) -> None:
    print(f"mean over {n} worlds: mesh Chamfer {mean['mesh']['chamfer']:.3f} m, F@5% {mean['mesh']['fscore'][2]:.3f}; "
          f"Gaussians Chamfer {mean['gaussians']['chamfer']:.3f} m, F@5% {mean['gaussians']['fscore'][2]:.3f}",
          flush=True)


def _write(out: Path, result: dict) -> None:
    from lyra.eval.mesh_benchmark import markdown_report
    from lyra.fileio import atomic_path

    out.mkdir(exist_ok=True)
    with atomic_path(out / f"{STEM}.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float) + "\n")
    with atomic_path(out / f"{STEM}.md") as tmp:
        tmp.write_text(markdown_report(result))


def _merge(args: argparse.Namespace) -> int:
    """``--merge DIR...``: one report from the parts of a split run."""
    from lyra.eval.mesh_benchmark import merge_results
    from lyra.eval.report import check_out_dir

    parts = []
    for d in args.merge:
        f = Path(d) / f"{STEM}.json"
        if not f.is_file():
            raise OutputPathError(f"--merge {d}: no {STEM}.json there (a --out folder of lyra eval mesh)")
        try:
            part = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            raise OutputPathError(f"--merge {f}: not a readable report ({e})") from None
        if not (isinstance(part, dict) and isinstance(part.get("setting"), dict) and "seeds" in part["setting"]
                and isinstance(part.get("worlds"), list)):
            raise OutputPathError(f"--merge {f}: not a lyra eval mesh report (no setting/seeds/worlds)")
        parts.append(part)
    out = check_out_dir(args.out)
    result = merge_results(parts)
    s = result["setting"]
    s["command"] = (f"lyra eval mesh --worlds {len(s['planned'])} --steps {s['steps']} --seed {s['seed']} --depth "
                    f"{'exact' if s['depth'] == 'exact' else 'tiny'} (in {len(parts)} parts joined with --merge)")
    _write(out, result)
    _print_mean(result["mean"], len(result["worlds"]))
    missing = f"; not evaluated: {', '.join(map(str, s['missing']))}" if s["missing"] else ""
    print(f"Joined {len(parts)} parts ({len(result['worlds'])} of {len(s['planned'])} planned worlds{missing}). "
          f"Wrote {out}/{STEM}.md, .json", flush=True)
    return 0


def run_mesh_eval(args: argparse.Namespace) -> int:
    from lyra.eval.mesh_benchmark import evaluate_cached_world, make_result
    from lyra.eval.report import check_out_dir, display_path
    from lyra.eval.scene_benchmark import SAMPLER_SALT, check_options
    from lyra.eval.world_cache import cache_world, weights_key
    from lyra.mesh import DEFAULT_RESOLUTION
    from lyra.pipeline import ScenePipeline
    from lyra.seeds import mix_seed
    from lyra.world import get_preset

    if args.merge:
        return _merge(args)
    seeds = check_options(args.worlds, args.steps, args.seed, "left", args.first)
    preset = get_preset(args.world_preset)
    out = check_out_dir(args.out)
    cache = Path(args.cache)
    if cache.exists() and not cache.is_dir():
        raise ConfigError(f"--cache {cache}: exists and is not a folder")
    device = pick_device(args.device)
    exact = args.depth == "exact"
    pipe = ScenePipeline.from_preset("tiny", weights=args.weights, student=args.student,
                                     depth=None if exact else "tiny", device=device)
    key = weights_key(pipe.weights)
    command = (f"lyra eval mesh --worlds {args.worlds} --steps {args.steps} --seed {args.seed} --depth {args.depth}"
               + (f" --first {args.first}" if args.first else "")
               + (f" --student {display_path(args.student)}" if args.student else "")
               + (f" --weights {display_path(args.weights)}" if args.weights else ""))
    setting = {"planned": seeds, "world_preset": preset.name, "steps": args.steps, "seed": args.seed,
               "depth": "exact" if exact else "estimate", "student": display_path(pipe.student_path),
               "weights_key": key, "mesh": {"resolution": DEFAULT_RESOLUTION, "depth_source": "points"},
               "command": command, "device": str(device)}
    print(f"student {display_path(pipe.student_path)} on {device}: test worlds {seeds[0]}–{seeds[-1]}, "
          f"{args.steps} steps, {args.depth} depth; scenes cached in {display_path(cache)}", flush=True)
    rows = []
    t_all = time.perf_counter()
    for s in seeds:
        folder = cache_world(pipe, s, cache, preset.name, args.steps, mix_seed(args.seed, s, SAMPLER_SALT) % 2**31,
                             exact, key)
        row = evaluate_cached_world(folder)
        rows.append(row)
        setting["mesh"]["depth_source"] = row["mesh_stats"]["depth_source"]
        setting.update(date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       seconds=time.perf_counter() - t_all)
        _write(out, make_result(setting, rows))  # after every world: a run cut short keeps what it finished
        m, g = row["mesh"], row["gaussians"]
        print(f"  world {s:>3} ({row['family']:7}): mesh Chamfer {m['chamfer']:.3f} m, F@5% {m['fscore'][2]:.3f}; "
              f"Gaussians Chamfer {g['chamfer']:.3f} m, F@5% {g['fscore'][2]:.3f} "
              f"({time.perf_counter() - t_all:.0f} s so far)", flush=True)
    _print_mean(make_result(setting, rows)["mean"], len(rows))
    print(f"Wrote {out}/{STEM}.md, .json", flush=True)
    return 0
