"""``lyra eval WHAT``: quality on held-out procedural test worlds with exact ground truth.

The command line only: each sub-command maps its arguments onto :mod:`lyra.eval` and writes the report files
(:mod:`lyra.eval.report`). Sub-commands (one ``_register_<what>`` each, listed in :data:`EVALUATIONS`):

* ``teacher`` — the teacher's decoded videos against the ground-truth renders, next to the warp-only
  baseline and the tokenizer ceiling (:mod:`lyra.eval.teacher_benchmark`); Markdown table, JSON and a
  contact sheet.
* ``scene`` — the product: image → 3D Gaussians through :class:`lyra.pipeline.ScenePipeline` along the
  world's GT trajectories, rendered at the GT cameras, next to the filled warp, warp-only and the teacher's own
  frames, in three frame groups (:mod:`lyra.eval.scene_benchmark`); Markdown tables, JSON and a contact sheet.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import time
from collections.abc import Callable
from pathlib import Path

from lyra.cli._common import add_device_argument, pick_device
from lyra.errors import ConfigError

TEACHER_DESCRIPTION = (
    "Evaluate the teacher on the first N held-out test worlds (lyra.world split 'test'): for each world the "
    "input image and depth (exact by default; --depth tiny for the shipped depth net's estimate) are warped "
    "along the world's six ground-truth trajectories, the teacher samples and the tokenizer decodes; every frame "
    "is compared with the ground-truth renders in three groups (input view, near, far) with the metrics of "
    "lyra eval scene (PSNR, SSIM, MS-SSIM, GMSD, sharpness), overall, on the pixels the warp sees and on the "
    "disoccluded pixels. Beside the teacher: the composite (the warp where it sees, the teacher in its holes: "
    "the targets of lyra sdg --composite), the filled warp (its warped input with holes inpainted by OpenCV "
    "Telea), warp-only (white holes) and the tokenizer ceiling (the ground truth encoded and decoded by the "
    "tokenizer: the best any teacher decoded through it can reach). Writes teacher_eval.md, teacher_eval.json "
    "and teacher_eval.png (the first --sheet-worlds worlds at full size; columns: input | teacher | "
    "composite | filled warp | warp-only | ceiling | GT) into --out (files of the estimated-depth setting are "
    "suffixed _depth-<spec>). "
    "Example: lyra eval teacher --worlds 32 --steps 35"
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model on held-out procedural test worlds or real photographs",
                       description="Quality on held-out procedural test worlds (exact ground truth) and on real "
                       "photographs with geometric ground truth (lyra eval real).")
    esub = p.add_subparsers(dest="eval_command", metavar="WHAT")
    for add in EVALUATIONS.values():
        add(esub)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _add_world_options(t: argparse.ArgumentParser) -> None:
    """--worlds, --steps and --seed of the held-out-world benchmarks (teacher, scene)."""
    t.add_argument("--worlds", type=int, default=8, help="number of test worlds (the first N test seeds; default 8)")
    t.add_argument("--steps", type=int, default=35, help="sampler steps (default 35)")
    t.add_argument("--seed", type=int, default=0, help="sampling seed (mixed with each world seed; default 0)")


def _add_sheet_options(t: argparse.ArgumentParser) -> None:
    """--sheet-trajectory and --sheet-worlds: which frames and worlds the contact sheet shows."""
    t.add_argument("--sheet-trajectory", default="left", help="trajectory shown in the contact sheet (default left)")
    t.add_argument("--sheet-worlds", type=int, default=4, metavar="N",
                   help="how many worlds (the first N, not chosen) the contact sheet shows (default 4)")


# ============================================================================================ teacher
def _register_teacher(esub: argparse._SubParsersAction) -> None:
    t = esub.add_parser("teacher", help="teacher vs ground truth, warp-only baseline and tokenizer ceiling",
                        description=TEACHER_DESCRIPTION)
    _add_world_options(t)
    t.add_argument("--weights", default=None, metavar="DIR", help="teacher weights (default: the shipped tiny ones)")
    t.add_argument("--depth", default="exact", metavar="SPEC",
                   help="'exact' (the world's depth, default), 'tiny' (the shipped depth net) or hf:DIR (a local "
                   "transformers depth model)")
    t.add_argument("--world-preset", default="tiny", help="lyra.world preset (default tiny: 17 x 176 x 320)")
    t.add_argument("--dynamic", action="store_true",
                   help="dynamic test worlds: the teacher reads the input camera's video (frame f at time t_f) "
                   "through the dynamic 3D cache; default weights: the shipped dynamic fine-tune if present, else "
                   "the static teacher. Files are suffixed _dynamic")
    _add_sheet_options(t)
    t.add_argument("--out", default="docs/teacher_eval", metavar="DIR",
                   help="output folder (created if missing; its parent must exist). Default docs/teacher_eval")
    t.add_argument("--no-progress", action="store_true", help="no sampler progress bar")
    add_device_argument(t)
    t.set_defaults(func=run_teacher)


def run_teacher(args: argparse.Namespace) -> int:
    from lyra.eval.groups import frame_groups, winners
    from lyra.eval.report import check_out_dir, contact_sheet, display_path, write_report
    from lyra.eval.scene_benchmark import check_options
    from lyra.eval.teacher_benchmark import SHEET_COLUMNS, evaluate_teacher_worlds, markdown_report, summarize
    from lyra.teacher.pipeline import TeacherPipeline
    from lyra.world import get_preset

    seeds = check_options(args.worlds, args.steps, args.seed, args.sheet_trajectory)
    if args.sheet_worlds < 1:
        raise ConfigError(f"--sheet-worlds must be >= 1, got {args.sheet_worlds}")
    preset = get_preset(args.world_preset)
    out_dir = check_out_dir(args.out)
    exact = args.depth == "exact"
    suffix = "" if exact else "_depth-" + "".join(ch if ch.isalnum() else "-" for ch in Path(args.depth).name)
    stem = f"teacher_eval{suffix}" + ("_dynamic" if args.dynamic else "")

    device = pick_device(args.device)
    pipe = TeacherPipeline.from_preset("tiny", weights=args.weights, depth=None if exact else args.depth,
                                       device=device, dynamic=args.dynamic)
    print(f"teacher {display_path(pipe.weights)} on {device}: {len(seeds)} {'dynamic ' if args.dynamic else ''}test "
          f"worlds, {args.steps} steps, {'exact' if exact else args.depth} depth", flush=True)
    t_all = time.perf_counter()
    rows, cells, ex = evaluate_teacher_worlds(pipe, seeds, preset.name, args.steps, args.seed, exact, args.dynamic,
                                              args.sheet_trajectory, progress=not args.no_progress,
                                              log=lambda line: print(line, flush=True),
                                              sheet_worlds=args.sheet_worlds)
    mean, gain = summarize(rows)
    info = pipe.describe()
    sheet_name = f"{stem}.png"
    command = (f"lyra eval teacher --worlds {len(seeds)} --steps {args.steps} --seed {args.seed} --depth {args.depth} "
               f"--world-preset {preset.name}" + (" --dynamic" if args.dynamic else "")
               + (f" --weights {display_path(args.weights)}" if args.weights else "")
               + (f" --sheet-worlds {args.sheet_worlds}" if args.sheet_worlds != 4 else ""))
    frames = int(ex.videos.shape[1])
    result = {
        "setting": {
            "weights": display_path(pipe.weights), "weights_sha256": info["weights_sha256"].get(
                "diffusion_pytorch_model.safetensors", ""), "weights_files_sha256": info["weights_sha256"],
            "steps": args.steps, "seed": args.seed, "depth": "exact" if exact else args.depth,
            "world_preset": preset.name, "dynamic": args.dynamic, "frames": frames,
            "height": int(ex.videos.shape[-2]), "width": int(ex.videos.shape[-1]), "worlds": len(seeds),
            "seeds": seeds, "device": str(device),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "command": command,
            "sheet": sheet_name, "sheet_trajectory": args.sheet_trajectory,
            "sheet_worlds": min(args.sheet_worlds, len(seeds)), "groups": frame_groups(frames),
            "seconds": time.perf_counter() - t_all,
        },
        "mean": mean,
        "winners": winners(mean),
        "gain_db": gain,
        "worlds": rows,
    }
    write_report(out_dir, stem, result, contact_sheet(cells, SHEET_COLUMNS), markdown_report(result))
    for group, systems in mean.items():
        t, fw, c = systems["teacher"], systems["filled_warp"], systems["ceiling"]
        print(f"{group:>5}: PSNR teacher {t['psnr']:.2f} / filled warp {fw['psnr']:.2f} / ceiling {c['psnr']:.2f} dB; "
              f"SSIM {t['ssim']:.3f} / {fw['ssim']:.3f} / {c['ssim']:.3f}", flush=True)
    print(f"holes: teacher - warp-only {gain['disoccluded_vs_warp']:+.2f} dB, teacher - filled warp "
          f"{gain['disoccluded_vs_filled']:+.2f} dB; visible: teacher - ceiling {gain['visible_vs_ceiling']:+.2f} dB. "
          f"Wrote {out_dir}/{stem}.md, .json, .png", flush=True)
    return 0


# ============================================================================================== scene
SCENE_DESCRIPTION = (
    "Evaluate the whole pipeline (image -> 3D Gaussians) on the first N held-out test worlds (lyra.world split "
    "'test'; the standard run is --worlds 32): each world's input image goes through lyra.pipeline.ScenePipeline "
    "with the teacher following the world's six ground-truth trajectories; the delivered (pruned) Gaussians are "
    "rendered at the GT cameras and compared with the GT renders in three frame groups: the input view (frame 0 "
    "against the input image), near views (the first quarter of each trajectory) and far views (the rest). "
    "Metrics: PSNR, SSIM, MS-SSIM, GMSD, the sharpness ratio (gradient energy against the truth; blur scores "
    "below 1), rendered-depth AbsRel and delta<1.25 (median-scaled with estimated depth), coverage, the same on "
    "disoccluded pixels, and LPIPS when local VGG16/LPIPS weights are given. Beside the student: the filled warp "
    "(warp-only with its holes inpainted by OpenCV Telea: the honest baseline), warp-only (white holes) and the "
    "teacher's own decoded frames. Writes scene_eval.md (a table per group, which system wins each metric, the "
    "delivered Gaussians' scale and depth statistics), scene_eval.json and scene_eval.png (the first "
    "--sheet-worlds worlds at full size, three rows each; columns: input | ours | latent head alone | filled warp | "
    "warp-only | teacher | GT) into --out (files of the exact-depth setting are suffixed _depth-exact). "
    "Example: lyra eval scene --worlds 32 --steps 35"
)


def _register_scene(esub: argparse._SubParsersAction) -> None:
    t = esub.add_parser("scene", help="image -> 3D scene vs ground truth, warp-only baseline and the teacher",
                        description=SCENE_DESCRIPTION)
    _add_world_options(t)
    t.add_argument("--student", default=None, metavar="DIR",
                   help="student export folder (default: the shipped src/lyra/weights/student_tiny)")
    t.add_argument("--weights", default=None, metavar="DIR",
                   help="weights folder (teacher/, tokenizer/, student/; or a teacher folder) as lyra generate")
    t.add_argument("--depth", default="tiny", metavar="SPEC",
                   help="'tiny' (the shipped depth net's estimate: what a user gets; default) or 'exact' (the "
                   "world's depth)")
    t.add_argument("--world-preset", default="tiny", help="lyra.world preset (default tiny: 17 x 176 x 320)")
    _add_sheet_options(t)
    t.add_argument("--input-resolution", type=int, default=None, metavar="PX",
                   help="long side of the input-view Gaussians as lyra generate (default 1024; 0: the latent head's "
                   "Gaussians alone). With input-view Gaussians the report adds 'latent head alone' (the ablation)")
    t.add_argument("--photo-scale", type=float, default=3.5, metavar="X",
                   help="also render each world's input view at X times the working size (a user's photo) and score "
                   "the input view delivered from it at its own size (default 3.5: 616x1120 -> delivered at 1024 px; "
                   "0: skip)")
    t.add_argument("--first", type=int, default=0, metavar="K",
                   help="start at the K-th test world (default 0): split a run into parts, e.g. in parallel, and "
                   "join their folders with --merge")
    t.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                   help="join the reports of the parts of a split run (their --out folders) into one in --out; "
                   "nothing is evaluated")
    t.add_argument("--lpips-weights", default=None, metavar="FILE",
                   help="local VGG16/LPIPS weights for an LPIPS column (default $LYRA_LPIPS_WEIGHTS; none: no LPIPS)")
    t.add_argument("--out", default="docs/scene_eval", metavar="DIR",
                   help="output folder (created if missing; its parent must exist). Default docs/scene_eval")
    t.add_argument("--no-progress", action="store_true", help="no stage lines or sampler progress bar")
    add_device_argument(t)
    t.set_defaults(func=run_scene)


def run_scene(args: argparse.Namespace) -> int:
    from lyra.distill.losses import find_lpips_weights, load_lpips
    from lyra.eval.report import check_out_dir, contact_sheet, display_path, write_report
    from lyra.eval.scene_benchmark import check_options, evaluate_scenes, markdown_report
    from lyra.pipeline import ScenePipeline
    from lyra.world import get_preset

    if args.depth not in ("tiny", "exact"):
        raise ConfigError(f"--depth must be 'tiny' (the depth net's estimate) or 'exact', got {args.depth!r}")
    exact = args.depth == "exact"
    if args.merge:
        return _merge_scene(args, "scene_eval" + ("_depth-exact" if exact else ""))
    check_options(args.worlds, args.steps, args.seed, args.sheet_trajectory, args.first)
    if args.sheet_worlds < 1:
        raise ConfigError(f"--sheet-worlds must be >= 1, got {args.sheet_worlds}")
    if args.input_resolution is not None and args.input_resolution < 0:
        raise ConfigError(f"--input-resolution must be >= 0 (0: off), got {args.input_resolution}")
    if not (args.photo_scale == 0 or 1 <= args.photo_scale <= 8):
        raise ConfigError(f"--photo-scale must be 0 (off) or in [1, 8], got {args.photo_scale}")
    preset = get_preset(args.world_preset)
    out_dir = check_out_dir(args.out)
    stem = "scene_eval" + ("_depth-exact" if exact else "")
    lpips_file = find_lpips_weights(args.lpips_weights)

    device = pick_device(args.device)
    pipe = ScenePipeline.from_preset("tiny", weights=args.weights, student=args.student,
                                     depth=None if exact else "tiny", device=device)
    if args.input_resolution is not None:
        pipe.input_resolution = args.input_resolution
    lpips = load_lpips(lpips_file).to(pipe.device) if lpips_file is not None else None
    print(f"student {display_path(pipe.student_path)} on {device}: {args.worlds} test worlds, {args.steps} steps, "
          f"{args.depth} depth; LPIPS {'on' if lpips is not None else 'off (no local VGG16 weights)'}", flush=True)
    t_all = time.perf_counter()
    result, rows = evaluate_scenes(pipe, args.worlds, preset.name, args.steps, args.seed, exact,
                                   args.sheet_trajectory, lpips, progress=not args.no_progress,
                                   log=lambda line: print(line, flush=True), sheet_worlds=args.sheet_worlds,
                                   first=args.first, photo_scale=args.photo_scale or None)
    student_hash = pipe.weights.get("student")
    command = (f"lyra eval scene --worlds {args.worlds} --steps {args.steps} --seed {args.seed} --depth {args.depth} "
               f"--world-preset {preset.name}" + (f" --student {display_path(args.student)}" if args.student else "")
               + (f" --weights {display_path(args.weights)}" if args.weights else "")
               + (f" --sheet-worlds {args.sheet_worlds}" if args.sheet_worlds != 4 else "")
               + (f" --first {args.first}" if args.first else "")
               + (f" --input-resolution {args.input_resolution}" if args.input_resolution is not None else "")
               + (f" --photo-scale {args.photo_scale:g}" if args.photo_scale != 3.5 else ""))
    result["setting"].update(
        student=display_path(pipe.student_path),
        student_sha256=(student_hash.get("model.safetensors", "") if isinstance(student_hash, dict)
                        else student_hash or ""),
        weights_sha256=pipe.weights, device=str(device),
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), command=command,
        sheet=f"{stem}.png", lpips_weights=display_path(lpips_file) if lpips_file is not None else None,
        seconds=time.perf_counter() - t_all)
    write_report(out_dir, stem, result, contact_sheet(rows, tuple(result["setting"]["sheet_columns"])),
                 markdown_report(result))
    _print_scene_summary(result["mean"])
    print(f"Wrote {out_dir}/{stem}.md, .json, .png", flush=True)
    return 0


def _print_scene_summary(mean: dict) -> None:
    for group, systems in mean.items():
        st, fw = systems["student"], systems["filled_warp"]
        print(f"{group:>5}: student PSNR {st['psnr']:.2f} dB, SSIM {st['ssim']:.3f}, GMSD {st['gmsd']:.3f}, "
              f"sharpness {st['sharpness']:.2f} | filled warp {fw['psnr']:.2f} dB, {fw['ssim']:.3f}, "
              f"{fw['gmsd']:.3f}, {fw['sharpness']:.2f}", flush=True)


def _merge_scene(args: argparse.Namespace, stem: str) -> int:
    """``--merge DIR...``: one report from the parts of a split run (their JSON; the first part's sheet)."""
    import json
    import shutil

    from lyra.errors import OutputPathError
    from lyra.eval.report import check_out_dir, write_report
    from lyra.eval.scene_benchmark import markdown_report, merge_results
    from lyra.fileio import atomic_path

    parts = []
    for d in args.merge:
        f = Path(d) / f"{stem}.json"
        if not f.is_file():
            raise OutputPathError(f"--merge {d}: no {stem}.json there (a --out folder of lyra eval scene)")
        try:
            parts.append(json.loads(f.read_text()))
        except (OSError, ValueError) as e:
            raise OutputPathError(f"--merge {f}: not a readable report ({e})") from None
    out_dir = check_out_dir(args.out)
    result = merge_results(parts)
    first = min(range(len(parts)), key=lambda i: parts[i]["worlds"][0]["seed"])
    sheet_src = Path(args.merge[first]) / f"{stem}.png"
    n = len(result["worlds"])
    result["setting"]["command"] = (f"lyra eval scene --worlds {n} --steps {result['setting']['steps']} --seed "
                                    f"{result['setting']['seed']} --depth {args.depth} (in {len(parts)} parts "
                                    "joined with --merge)")

    write_report(out_dir, stem, result, None, markdown_report(result))
    with atomic_path(out_dir / f"{stem}.png") as tmp:  # the first part's sheet, as it is
        shutil.copyfile(sheet_src, tmp)
    _print_scene_summary(result["mean"])
    print(f"Joined {len(parts)} parts ({n} worlds). Wrote {out_dir}/{stem}.md, .json, .png", flush=True)
    return 0


# =============================================================================================== real
REAL_DESCRIPTION = (
    "Evaluate image -> 3D on real photographs with geometric ground truth (../shared/data/real, or --data DIR, or "
    "$LYRA_REAL_DATA; read that folder's README for sources and licences). Each photo goes through "
    "lyra.pipeline.ScenePipeline as a user's would (working size following its aspect, the dataset's intrinsics). "
    "Reports: depth AbsRel and delta<1.25 after median scaling on the RGB-D pairs and the Middlebury stereo pairs "
    "(against 1/disparity: median scaling removes the unknown focal x baseline), beside a constant depth; input-view "
    "fidelity and sharpness of the delivered scene on every photo; novel views on the stereo pairs (left in, right "
    "out, baseline fitted to the GT disparity) and on LLFF fern (one view in, three others after a similarity "
    "alignment of the poses: relative to the input view, scale from COLMAP's sparse points), each beside the filled "
    "warp with the same depth. Writes real_eval.md, real_eval.json and real_eval.png (input | ours | filled warp | "
    "real, at full size) into --out. Without the data folder it prints one line and exits 0. "
    "Examples: lyra eval real   |   lyra eval real --max-images 1 --steps 4   |   lyra eval real --depth-only"
)


def _register_real(esub: argparse._SubParsersAction) -> None:
    t = esub.add_parser("real", help="image -> 3D on real photographs: depth, input view, novel views (stereo, fern)",
                        description=REAL_DESCRIPTION)
    t.add_argument("--data", default=None, metavar="DIR",
                   help="the real data folder (default $LYRA_REAL_DATA, else ../shared/data/real beside the repo)")
    t.add_argument("--max-images", type=int, default=None, metavar="N",
                   help="at most N photos of each kind (RGB-D, stereo, fern, ScanNet), in the data's order "
                   "(default all)")
    t.add_argument("--depth-only", action="store_true",
                   help="only the depth part (the depth estimate against the ground truth; seconds, no teacher)")
    t.add_argument("--steps", type=int, default=35, help="teacher sampler steps (default 35)")
    t.add_argument("--seed", type=int, default=0, help="sampling seed, the same for every photo (default 0)")
    t.add_argument("--depth", default="tiny", metavar="SPEC",
                   help="depth source: 'tiny' (the shipped depth net, default), 'tiny_photo' (fine-tuned on "
                   "photo-style worlds) or hf:DIR (a lyra train depth export or a local transformers depth model)")
    t.add_argument("--student", default=None, metavar="DIR",
                   help="student export folder (default: the shipped src/lyra/weights/student_tiny)")
    t.add_argument("--weights", default=None, metavar="DIR", help="weights folder as lyra generate --weights")
    t.add_argument("--out", default="docs/real_eval", metavar="DIR",
                   help="output folder (created if missing; its parent must exist). Default docs/real_eval")
    t.add_argument("--no-progress", action="store_true", help="no per-photo lines")
    add_device_argument(t)
    t.set_defaults(func=run_real)


def run_real(args: argparse.Namespace) -> int:
    from lyra.eval.real_benchmark import SHEET_COLUMNS, evaluate_real, markdown_report
    from lyra.eval.real_data import DATA_ENV, default_data_dir
    from lyra.eval.report import check_out_dir, contact_sheet, display_path, write_report
    from lyra.pipeline import ScenePipeline

    data = Path(args.data).expanduser() if args.data else default_data_dir()
    if not data.is_dir():
        print(f"lyra eval real: no real data at {display_path(data)} (give --data DIR or set ${DATA_ENV}); skipped")
        return 0
    if args.max_images is not None and args.max_images < 1:
        raise ConfigError(f"--max-images must be >= 1, got {args.max_images}")
    if args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    out_dir = check_out_dir(args.out)
    stem = "real_eval" + ("" if args.depth == "tiny" else "_depth-" + "".join(
        ch if ch.isalnum() else "-" for ch in Path(args.depth.removeprefix("hf:")).name)) + (
        "_depth-only" if args.depth_only else "")
    device = pick_device(args.device)
    pipe = ScenePipeline.from_preset("tiny", weights=args.weights, student=args.student, depth=args.depth,
                                     device=device)
    print(f"real data {display_path(data)}: student {display_path(pipe.student_path)}, depth {args.depth}, on "
          f"{device}", flush=True)
    log = None if args.no_progress else (lambda line: print(line, flush=True))
    result, sheet = evaluate_real(pipe, data, args.max_images, args.steps, args.seed, depth_only_run=args.depth_only,
                                  log=log)
    command = ("lyra eval real" + (f" --data {display_path(args.data)}" if args.data else "")
               + (f" --max-images {args.max_images}" if args.max_images else "")
               + (" --depth-only" if args.depth_only else "")
               + (f" --steps {args.steps}" if args.steps != 35 else "") + (f" --seed {args.seed}" if args.seed else "")
               + (f" --depth {args.depth}" if args.depth != "tiny" else "")
               + (f" --student {display_path(args.student)}" if args.student else ""))
    result["setting"].update(
        data=display_path(data), data_display=display_path(data), depth=args.depth,
        student=display_path(pipe.student_path), weights_sha256=pipe.weights, device=str(device),
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), command=command,
        sheet=f"{stem}.png" if sheet else None)
    write_report(out_dir, stem, result, contact_sheet(sheet, SHEET_COLUMNS) if sheet else None,
                 markdown_report(result))
    for g, m in result["depth"]["mean"].items():
        dn, co = m.get("depth_net", {}), m.get("constant", {})
        print(f"depth {g:<20} n={m['images']:>2}: AbsRel {dn.get('abs_rel', float('nan')):.3f} δ1 "
              f"{dn.get('delta1', float('nan')):.3f} (constant {co.get('abs_rel', float('nan')):.3f} / "
              f"{co.get('delta1', float('nan')):.3f})", flush=True)
    if result.get("input_view"):
        o, f = result["input_view"]["mean"]["ours"], result["input_view"]["mean"]["filled_warp"]
        print(f"input view: ours {o['psnr']:.2f} dB, SSIM {o['ssim']:.3f}, sharpness {o['sharpness']:.2f} | filled "
              f"warp {f['psnr']:.2f} dB", flush=True)
    for k, v in (result.get("novel_views") or {}).items():
        o, f = v["mean"]["ours"], v["mean"]["filled_warp"]
        print(f"novel views {k}: ours {o['psnr']:.2f} dB, SSIM {o['ssim']:.3f}, sharpness {o['sharpness']:.2f} | "
              f"filled warp {f['psnr']:.2f} dB, SSIM {f['ssim']:.3f}, sharpness {f['sharpness']:.2f}", flush=True)
    print(f"Wrote {display_path(out_dir)}/{stem}.md, .json" + (", .png" if sheet else ""), flush=True)
    return 0


def _register_mesh(esub: argparse._SubParsersAction) -> None:
    from lyra.cli.eval_mesh import register_mesh_eval

    register_mesh_eval(esub)


EVALUATIONS: dict[str, Callable[[argparse._SubParsersAction], None]] = {"teacher": _register_teacher,
                                                                        "scene": _register_scene,
                                                                        "mesh": _register_mesh,
                                                                        "real": _register_real}
