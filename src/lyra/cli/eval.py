"""``lyra eval WHAT``: quality on held-out procedural test worlds with exact ground truth.

Sub-commands (one ``_register_<what>`` each, listed in :data:`EVALUATIONS`):

* ``teacher`` — the teacher's decoded videos against the ground-truth renders, next to the warp-only
  baseline and the tokenizer ceiling; Markdown table, JSON and a contact sheet.
* ``scene`` — the product: image → 3D Gaussians through :class:`lyra.pipeline.ScenePipeline` along the
  world's GT trajectories, rendered at the GT cameras, next to warp-only and the teacher's own frames
  (:mod:`lyra.eval.scene_benchmark`); Markdown table, JSON and a contact sheet.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.cli._common import add_device_argument, pick_device
from lyra.errors import ConfigError, OutputPathError

TEACHER_DESCRIPTION = (
    "Evaluate the teacher on the first N held-out test worlds (lyra.world split 'test'): for each world the "
    "input image and depth (exact by default; --depth tiny for the shipped depth net's estimate) are warped "
    "along the world's six ground-truth trajectories, the teacher samples and the tokenizer decodes; frames "
    "1..T-1 (frame 0 is the input) are compared with the ground-truth renders: PSNR (MSE pooled over the "
    "world's frames) and SSIM (mean over frames), overall and on the disoccluded pixels (where the warp has "
    "no data). Baselines: warp-only (the warped frames with holes filled by nearest-valid diffusion, "
    "lyra.teacher.train_teacher.fill_holes) and the tokenizer ceiling (the ground truth encoded and decoded "
    "by the tokenizer: the best any teacher decoded through it can reach). Writes teacher_eval.md, "
    "teacher_eval.json and teacher_eval.png (rows: worlds; columns: input | warped | teacher | GT) into --out "
    "(files of the estimated-depth setting are suffixed _depth-<spec>)."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model on held-out procedural test worlds",
                       description="Quality on held-out procedural test worlds (exact ground truth).")
    esub = p.add_subparsers(dest="eval_command", metavar="WHAT")
    for add in EVALUATIONS.values():
        add(esub)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


# ============================================================================================ teacher
def _register_teacher(esub: argparse._SubParsersAction) -> None:
    t = esub.add_parser("teacher", help="teacher vs ground truth, warp-only baseline and tokenizer ceiling",
                        description=TEACHER_DESCRIPTION)
    t.add_argument("--worlds", type=int, default=8, help="number of test worlds (the first N test seeds; default 8)")
    t.add_argument("--steps", type=int, default=35, help="sampler steps (default 35)")
    t.add_argument("--seed", type=int, default=0, help="sampling seed (mixed with each world seed; default 0)")
    t.add_argument("--weights", default=None, metavar="DIR", help="teacher weights (default: the shipped tiny ones)")
    t.add_argument("--depth", default="exact", metavar="SPEC",
                   help="'exact' (the world's depth, default), 'tiny' (the shipped depth net) or hf:DIR (a local "
                   "transformers depth model)")
    t.add_argument("--world-preset", default="tiny", help="lyra.world preset (default tiny: 17 x 176 x 320)")
    t.add_argument("--dynamic", action="store_true",
                   help="dynamic test worlds: the teacher reads the input camera's video (frame f at time t_f) "
                   "through the dynamic 3D cache; default weights: the shipped dynamic fine-tune if present, else "
                   "the static teacher. Files are suffixed _dynamic")
    t.add_argument("--sheet-trajectory", default="left", help="trajectory shown in the contact sheet (default left)")
    t.add_argument("--out", default="docs/teacher_eval", metavar="DIR",
                   help="output folder (created if missing; its parent must exist). Default docs/teacher_eval")
    t.add_argument("--no-progress", action="store_true", help="no sampler progress bar")
    add_device_argument(t)
    t.set_defaults(func=run_teacher)


def _ssim_values(pred: Tensor, gt: Tensor, holes: Tensor) -> tuple[float, float]:
    """Mean SSIM over frames ``[..., 3, H, W]`` and mean SSIM-map value at disoccluded pixels (window
    centres where ``holes`` ``[..., H, W]`` is true; ``nan`` if none)."""
    from lyra.eval.metrics import ssim_map

    m = ssim_map(pred, gt).mean(dim=-3)  # [..., H-10, W-10], valid window positions
    overall = float(m.mean(dim=(-2, -1)).mean())
    r = (holes.shape[-2] - m.shape[-2]) // 2
    centre = holes[..., r:r + m.shape[-2], r:r + m.shape[-1]]
    return overall, float(m[centre].mean()) if bool(centre.any()) else math.nan


def world_metrics(teacher: Tensor, warped: Tensor, warp_mask: Tensor, gt: Tensor, ceiling: Tensor) -> dict[str, float]:
    """PSNR / SSIM of teacher, warp-only baseline and tokenizer ceiling vs ``gt`` on frames ``1..T−1``.

    Args:
        teacher, warped, gt, ceiling: ``[V, T, 3, H, W]`` in [0, 1] (``ceiling``: ``gt`` through the
            tokenizer); warp_mask: ``[V, T, H, W]`` bool (disoccluded = false).

    Returns the keys of :func:`lyra.teacher.train_teacher.teacher_metrics` (same definitions: PSNR of the
    MSE pooled over all frames and trajectories) plus ``psnr_ceiling[_disoccluded]`` and
    ``ssim_{teacher,warp,ceiling}[_disoccluded]``.
    """
    from lyra.teacher.train_teacher import fill_holes, psnr

    t, w, g, c = teacher[:, 1:], warped[:, 1:], gt[:, 1:], ceiling[:, 1:]
    m = warp_mask[:, 1:].bool()
    holes = ~m
    base = fill_holes(w, m)
    out = {"psnr_teacher": psnr(t, g), "psnr_warp": psnr(base, g), "psnr_ceiling": psnr(c, g),
           "psnr_teacher_disoccluded": psnr(t, g, holes), "psnr_warp_disoccluded": psnr(base, g, holes),
           "psnr_ceiling_disoccluded": psnr(c, g, holes), "disoccluded_fraction": float(holes.float().mean())}
    for name, pred in (("teacher", t), ("warp", base), ("ceiling", c)):
        out[f"ssim_{name}"], out[f"ssim_{name}_disoccluded"] = _ssim_values(pred, g, holes)
    return out


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if isinstance(r.get(key), float) and math.isfinite(r[key])]
    return sum(vals) / len(vals) if vals else math.nan


METRIC_KEYS = ("psnr_teacher", "psnr_warp", "psnr_ceiling", "ssim_teacher", "ssim_warp", "ssim_ceiling",
               "psnr_teacher_disoccluded", "psnr_warp_disoccluded", "psnr_ceiling_disoccluded",
               "ssim_teacher_disoccluded", "ssim_warp_disoccluded", "ssim_ceiling_disoccluded",
               "disoccluded_fraction")


def _fmt(v: float, digits: int) -> str:
    return "–" if not math.isfinite(v) else f"{v:.{digits}f}"


def markdown_report(result: dict[str, Any]) -> str:
    """The Markdown page of a teacher evaluation (``result`` as written to the JSON)."""
    s = result["setting"]
    rows, mean = result["worlds"], result["mean"]
    lines = [
        f"# Teacher evaluation — {s['depth']} depth, {s['worlds']} held-out "
        + ("dynamic test worlds (the input camera's video through the dynamic 3D cache)" if s.get("dynamic")
           else "test worlds"),
        "",
        f"Teacher `{s['weights']}` (sha256 {s['weights_sha256'][:12]}…), {s['steps']} Euler steps, guidance 1.0, "
        f"seed {s['seed']}; world preset `{s['world_preset']}` ({s['frames']} frames × {s['height']} × {s['width']}), "
        f"test seeds {s['seeds'][0]}–{s['seeds'][-1]}; {s['device']}, {s['date']}. Command: `{s['command']}`.",
        "",
        "Frames 1..T−1 of all six trajectories (frame 0 is the input). PSNR: MSE pooled over a world's frames; "
        "SSIM: Gaussian 11×11, mean over frames (disoccluded: mean of the SSIM map at window centres without warp "
        "data). **Warp-only**: the warped frames with holes filled by nearest-valid diffusion. **Ceiling**: the "
        "ground truth encoded and decoded by the tokenizer — the best a teacher decoded through it can reach.",
        "",
        f"**Teacher − warp-only: {mean['psnr_teacher'] - mean['psnr_warp']:+.2f} dB overall, "
        f"{mean['psnr_teacher_disoccluded'] - mean['psnr_warp_disoccluded']:+.2f} dB on disoccluded pixels** "
        "(target ≥ +2 dB on both).",
        "",
        "| world | family | disocc. | PSNR teacher | PSNR warp-only | PSNR ceiling | SSIM teacher | SSIM warp-only "
        "| SSIM ceiling |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(label: str, fam: str, r: dict[str, Any], b: str = "") -> str:
        return (f"| {b}{label}{b} | {fam} | {_fmt(100 * r['disoccluded_fraction'], 1)} % | "
                + " | ".join(b + _fmt(r[k], 2) + b for k in ("psnr_teacher", "psnr_warp", "psnr_ceiling"))
                + " | " + " | ".join(b + _fmt(r[k], 3) + b for k in ("ssim_teacher", "ssim_warp", "ssim_ceiling"))
                + " |")

    lines += [row(str(r["seed"]), r["family"], r) for r in rows] + [row("mean", "", mean, "**")]
    lines += ["", "Disoccluded pixels only:", "",
              "| world | PSNR teacher | PSNR warp-only | PSNR ceiling | SSIM teacher | SSIM warp-only | SSIM ceiling |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    keys_p = ("psnr_teacher_disoccluded", "psnr_warp_disoccluded", "psnr_ceiling_disoccluded")
    keys_s = ("ssim_teacher_disoccluded", "ssim_warp_disoccluded", "ssim_ceiling_disoccluded")
    for label, r, b in [*[(str(r["seed"]), r, "") for r in rows], ("mean", mean, "**")]:
        lines.append(f"| {b}{label}{b} | " + " | ".join(b + _fmt(r[k], 2) + b for k in keys_p) + " | "
                     + " | ".join(b + _fmt(r[k], 3) + b for k in keys_s) + " |")
    lines += ["", f"Contact sheet: [{s['sheet']}]({s['sheet']}) — rows: worlds; columns: input | warped | teacher | "
              f"ground truth, last frame of the `{s['sheet_trajectory']}` trajectory (black: no warp data).", ""]
    return "\n".join(lines)


def contact_sheet(cells: list[tuple[str, list[Tensor]]], labels: tuple[str, ...]) -> Any:
    """A PIL image: one row per ``(row label, [images [3, H, W] in [0, 1]])``, a header with ``labels``."""
    import numpy as np
    from PIL import Image, ImageDraw

    H, W = cells[0][1][0].shape[-2:]
    head, gap = 14, 2
    ncol = len(labels)
    sheet = Image.new("RGB", (ncol * (W + gap) - gap, head + len(cells) * (H + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, lab in enumerate(labels):
        draw.text((j * (W + gap) + 3, 1), lab, fill=(0, 0, 0))
    for i, (row_label, imgs) in enumerate(cells):
        y = head + i * (H + gap)
        for j, img in enumerate(imgs):
            a = (img.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
            sheet.paste(Image.fromarray(a), (j * (W + gap), y))
        draw.rectangle((0, y, 6 * len(row_label) + 4, y + 11), fill=(0, 0, 0))
        draw.text((2, y), row_label, fill=(255, 255, 255))
    return sheet


def run_teacher(args: argparse.Namespace) -> int:
    from lyra.fileio import atomic_path
    from lyra.geometry.trajectories import TRAJECTORY_NAMES
    from lyra.teacher.pipeline import TeacherPipeline
    from lyra.teacher.train_teacher import load_example
    from lyra.train.runtime import mix_seed
    from lyra.world import get_preset, split_seeds

    if args.worlds < 1:
        raise ConfigError(f"--worlds must be >= 1, got {args.worlds}")
    seeds = list(split_seeds("test"))
    if args.worlds > len(seeds):
        raise ConfigError(f"--worlds: the test split holds {len(seeds)} worlds, got {args.worlds}")
    seeds = seeds[:args.worlds]
    if args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    if args.sheet_trajectory not in TRAJECTORY_NAMES:
        raise ConfigError(f"--sheet-trajectory must be one of {', '.join(TRAJECTORY_NAMES)}")
    preset = get_preset(args.world_preset)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError(f"--out {out_dir}: exists and is not a folder")
    if not out_dir.exists() and not (out_dir.parent if str(out_dir.parent) else Path(".")).is_dir():
        raise OutputPathError(f"--out {out_dir}: folder {out_dir.parent} does not exist (create it first)")
    exact = args.depth == "exact"
    suffix = "" if exact else "_depth-" + "".join(ch if ch.isalnum() else "-" for ch in Path(args.depth).name)
    stem = f"teacher_eval{suffix}" + ("_dynamic" if args.dynamic else "")

    device = pick_device(args.device)
    pipe = TeacherPipeline.from_preset("tiny", weights=args.weights, depth=None if exact else args.depth,
                                       device=device, dynamic=args.dynamic)
    print(f"teacher {pipe.weights} on {device}: {len(seeds)} {'dynamic ' if args.dynamic else ''}test worlds, "
          f"{args.steps} steps, {'exact' if exact else args.depth} depth", flush=True)
    rows: list[dict[str, Any]] = []
    cells: list[tuple[str, list[Tensor]]] = []
    v_sheet = TRAJECTORY_NAMES.index(args.sheet_trajectory)
    t_all = time.perf_counter()
    for s in seeds:
        t0 = time.perf_counter()
        ex = load_example(s, preset.name, str(device), dynamic=args.dynamic).to("cpu")
        common = {"camera": ex.cameras[0, 0], "trajectories": ex.cameras, "names": TRAJECTORY_NAMES,
                  "seed": mix_seed(args.seed, s, 19) % 2**31, "steps": args.steps, "progress": not args.no_progress}
        if args.dynamic:  # a static input camera filming the moving scene; GT trajectory frame f shows time t_f
            out = pipe(video=ex.input_video, video_depth=ex.input_depths if exact else None, times=ex.times,
                       **common)
        else:
            out = pipe(ex.image, depth=ex.depth if exact else None, **common)
        video = pipe.decode(out)
        with torch.no_grad():
            ceiling = pipe.tokenizer.roundtrip(ex.videos.to(pipe.tokenizer.device))
        dev = pipe.device  # the metrics (hole filling, SSIM) are heavy on the CPU: run them where the model runs
        m = world_metrics(video.to(dev), out.conditions.rgb.to(dev), out.conditions.mask.to(dev), ex.videos.to(dev),
                          ceiling.to(dev))
        rows.append({"seed": s, "family": ex.family, "center_depth": ex.center_depth, **m,
                     "seconds": time.perf_counter() - t0})
        last = ex.videos.shape[1] - 1
        cells.append((f"{s} {ex.family}", [ex.image, out.conditions.rgb[v_sheet, last], video[v_sheet, last],
                                           ex.videos[v_sheet, last]]))
        print(f"  world {s:>3} ({ex.family:7}): PSNR teacher {m['psnr_teacher']:.2f} / warp-only "
              f"{m['psnr_warp']:.2f} / ceiling {m['psnr_ceiling']:.2f} dB; "
              f"disoccluded ({100 * m['disoccluded_fraction']:.1f} %) "
              f"{m['psnr_teacher_disoccluded']:.2f} / {m['psnr_warp_disoccluded']:.2f} / "
              f"{m['psnr_ceiling_disoccluded']:.2f} dB; SSIM {m['ssim_teacher']:.3f} / {m['ssim_warp']:.3f} / "
              f"{m['ssim_ceiling']:.3f} ({rows[-1]['seconds']:.1f} s)", flush=True)
    mean = {k: _mean(rows, k) for k in METRIC_KEYS}
    info = pipe.describe()
    sheet_name = f"{stem}.png"
    command = (f"lyra eval teacher --worlds {len(seeds)} --steps {args.steps} --seed {args.seed} --depth {args.depth} "
               f"--world-preset {preset.name}" + (" --dynamic" if args.dynamic else "")
               + (f" --weights {args.weights}" if args.weights else ""))
    result = {
        "setting": {
            "weights": str(pipe.weights), "weights_sha256": info["weights_sha256"].get(
                "diffusion_pytorch_model.safetensors", ""), "weights_files_sha256": info["weights_sha256"],
            "steps": args.steps, "seed": args.seed, "depth": "exact" if exact else args.depth,
            "world_preset": preset.name, "dynamic": args.dynamic, "frames": int(ex.videos.shape[1]),
            "height": int(ex.videos.shape[-2]),
            "width": int(ex.videos.shape[-1]), "worlds": len(seeds), "seeds": seeds, "device": str(device),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command,
            "sheet": sheet_name, "sheet_trajectory": args.sheet_trajectory, "seconds": time.perf_counter() - t_all,
            "frames_compared": "1..T-1 of all six trajectories",
        },
        "mean": mean,
        "gain_db": {"overall": mean["psnr_teacher"] - mean["psnr_warp"],
                    "disoccluded": mean["psnr_teacher_disoccluded"] - mean["psnr_warp_disoccluded"], "target": 2.0},
        "worlds": rows,
    }
    sheet = contact_sheet(cells, ("input", "warped", "teacher", "ground truth"))
    out_dir.mkdir(exist_ok=True)
    with atomic_path(out_dir / f"{stem}.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float) + "\n")
    with atomic_path(out_dir / sheet_name) as tmp:
        sheet.save(tmp, format="PNG")
    with atomic_path(out_dir / f"{stem}.md") as tmp:
        tmp.write_text(markdown_report(result))
    print(f"mean PSNR teacher {mean['psnr_teacher']:.2f} dB vs warp-only {mean['psnr_warp']:.2f} dB "
          f"({result['gain_db']['overall']:+.2f}); disoccluded {mean['psnr_teacher_disoccluded']:.2f} vs "
          f"{mean['psnr_warp_disoccluded']:.2f} dB ({result['gain_db']['disoccluded']:+.2f}); tokenizer ceiling "
          f"{mean['psnr_ceiling']:.2f} dB. Wrote {out_dir}/{stem}.md, .json, .png", flush=True)
    return 0


# ============================================================================================== scene
SCENE_DESCRIPTION = (
    "Evaluate the whole pipeline (image -> 3D Gaussians) on the first N held-out test worlds (lyra.world split "
    "'test'): each world's input image goes through lyra.pipeline.ScenePipeline with the teacher following the "
    "world's six ground-truth trajectories; the delivered (pruned) Gaussians are rendered at the GT cameras and "
    "frames 1..T-1 (frame 0 is the input) are compared with the GT renders: PSNR and SSIM per frame, mean per "
    "world (LPIPS too when local VGG16/LPIPS weights are given). Beside it: warp-only (the input image lifted "
    "to Gaussians with the same input depth, rendered at the same cameras) and the teacher's own decoded frames. "
    "Target: student PSNR >= warp-only + 3 dB. Writes scene_eval.md, scene_eval.json and scene_eval.png (rows: "
    "worlds; columns: input | warp-only | student | teacher | GT) into --out (files of the exact-depth setting "
    "are suffixed _depth-exact)."
)


def _register_scene(esub: argparse._SubParsersAction) -> None:
    t = esub.add_parser("scene", help="image -> 3D scene vs ground truth, warp-only baseline and the teacher",
                        description=SCENE_DESCRIPTION)
    t.add_argument("--worlds", type=int, default=8, help="number of test worlds (the first N test seeds; default 8)")
    t.add_argument("--steps", type=int, default=35, help="sampler steps (default 35)")
    t.add_argument("--seed", type=int, default=0, help="sampling seed (mixed with each world seed; default 0)")
    t.add_argument("--student", default=None, metavar="DIR",
                   help="student export folder (default: the shipped src/lyra/weights/student_tiny)")
    t.add_argument("--weights", default=None, metavar="DIR",
                   help="weights folder (teacher/, tokenizer/, student/; or a teacher folder) as lyra generate")
    t.add_argument("--depth", default="tiny", metavar="SPEC",
                   help="'tiny' (the shipped depth net's estimate: what a user gets; default) or 'exact' (the "
                   "world's depth)")
    t.add_argument("--world-preset", default="tiny", help="lyra.world preset (default tiny: 17 x 176 x 320)")
    t.add_argument("--sheet-trajectory", default="left", help="trajectory shown in the contact sheet (default left)")
    t.add_argument("--lpips-weights", default=None, metavar="FILE",
                   help="local VGG16/LPIPS weights for an LPIPS column (default $LYRA_LPIPS_WEIGHTS; none: no LPIPS)")
    t.add_argument("--out", default="docs/scene_eval", metavar="DIR",
                   help="output folder (created if missing; its parent must exist). Default docs/scene_eval")
    t.add_argument("--no-progress", action="store_true", help="no stage lines or sampler progress bar")
    add_device_argument(t)
    t.set_defaults(func=run_scene)


def run_scene(args: argparse.Namespace) -> int:
    from lyra.distill.losses import find_lpips_weights, load_lpips
    from lyra.eval.scene_benchmark import check_options, evaluate_scenes, markdown_report
    from lyra.fileio import atomic_path
    from lyra.pipeline import ScenePipeline
    from lyra.world import get_preset

    check_options(args.worlds, args.steps, args.seed, args.sheet_trajectory)
    if args.depth not in ("tiny", "exact"):
        raise ConfigError(f"--depth must be 'tiny' (the depth net's estimate) or 'exact', got {args.depth!r}")
    exact = args.depth == "exact"
    preset = get_preset(args.world_preset)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError(f"--out {out_dir}: exists and is not a folder")
    if not out_dir.exists() and not (out_dir.parent if str(out_dir.parent) else Path(".")).is_dir():
        raise OutputPathError(f"--out {out_dir}: folder {out_dir.parent} does not exist (create it first)")
    stem = "scene_eval" + ("_depth-exact" if exact else "")
    lpips_file = find_lpips_weights(args.lpips_weights)

    device = pick_device(args.device)
    pipe = ScenePipeline.from_preset("tiny", weights=args.weights, student=args.student,
                                     depth=None if exact else "tiny", device=device)
    lpips = load_lpips(lpips_file).to(pipe.device) if lpips_file is not None else None
    print(f"student {pipe.student_path} on {device}: {args.worlds} test worlds, {args.steps} steps, {args.depth} "
          f"depth; LPIPS {'on' if lpips is not None else 'off (no local VGG16 weights)'}", flush=True)
    t_all = time.perf_counter()
    result, cells = evaluate_scenes(pipe, args.worlds, preset.name, args.steps, args.seed, exact,
                                    args.sheet_trajectory, lpips, progress=not args.no_progress,
                                    log=lambda line: print(line, flush=True))
    student_hash = pipe.weights.get("student")
    command = (f"lyra eval scene --worlds {args.worlds} --steps {args.steps} --seed {args.seed} --depth {args.depth} "
               f"--world-preset {preset.name}" + (f" --student {args.student}" if args.student else "")
               + (f" --weights {args.weights}" if args.weights else ""))
    sheet_name = f"{stem}.png"
    result["setting"].update(
        student=str(pipe.student_path),
        student_sha256=(student_hash.get("model.safetensors", "") if isinstance(student_hash, dict)
                        else student_hash or ""),
        weights_sha256=pipe.weights, device=str(device),
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), command=command, sheet=sheet_name,
        lpips_weights=str(lpips_file) if lpips_file is not None else None, seconds=time.perf_counter() - t_all)
    sheet = contact_sheet(cells, ("input", "warp-only", "student", "teacher", "ground truth"))
    out_dir.mkdir(exist_ok=True)
    with atomic_path(out_dir / f"{stem}.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float) + "\n")
    with atomic_path(out_dir / sheet_name) as tmp:
        sheet.save(tmp, format="PNG")
    with atomic_path(out_dir / f"{stem}.md") as tmp:
        tmp.write_text(markdown_report(result))
    mean, gain = result["mean"], result["gain_db"]
    print(f"mean PSNR student {mean['psnr_student']:.2f} dB vs warp-only {mean['psnr_warp']:.2f} dB "
          f"({gain['student_vs_warp']:+.2f}; target +{gain['target']:g}: {'met' if gain['met'] else 'missed'}); "
          f"teacher {mean['psnr_teacher']:.2f} dB. Wrote {out_dir}/{stem}.md, .json, .png", flush=True)
    return 0


#: ``lyra eval`` sub-commands: name → function adding its parser to the sub-parsers.
def _register_mesh(esub: argparse._SubParsersAction) -> None:
    from lyra.cli.eval_mesh import register_mesh_eval

    register_mesh_eval(esub)


EVALUATIONS: dict[str, Callable[[argparse._SubParsersAction], None]] = {"teacher": _register_teacher,
                                                                        "scene": _register_scene,
                                                                        "mesh": _register_mesh}
