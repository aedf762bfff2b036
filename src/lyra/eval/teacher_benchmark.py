"""The teacher benchmark (``lyra eval teacher``): the teacher's decoded videos on held-out test worlds against
the ground-truth renders, beside the filled warp, warp-only and the tokenizer ceiling.

For each of the first N held-out test worlds (:mod:`lyra.world`, split ``test``; :func:`lyra.world.load_example`,
cropped to multiples of 16 pixels) the input image and depth (exact, or a depth estimator's) are warped along the
world's six ground-truth trajectories, the teacher samples and the tokenizer decodes. Every frame is compared with
the ground truth in the frame groups of :mod:`lyra.eval.groups` (input view, near, far) with the metrics every
evaluator shares, overall, on the pixels the warp sees (``psnr_visible``) and on the disoccluded pixels (where the
warp has no data). Systems:

* **teacher** — the decoded frames;
* **composite** — the warp where it has data, the teacher's frames in the holes (what ``lyra sdg --composite``
  gives the student as targets);
* **filled warp** — the teacher's own warped input with its holes inpainted by OpenCV Telea
  (:func:`lyra.eval.baselines.inpaint_holes`);
* **warp-only** — the same warp with white holes;
* **ceiling** — the ground truth encoded and decoded by the tokenizer: the best any teacher decoded through it can
  reach.

Dynamic worlds (``dynamic=True``): the teacher reads the input camera's video through the dynamic 3D cache.
:func:`teacher_metrics` is the teacher trainer's cheap validation (pooled PSNR, nearest-valid hole filling), kept
so that its recorded curves stay comparable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lyra.eval.baselines import Views, fill_holes, inpaint_holes
from lyra.eval.groups import Table, frame_groups, group_metrics, mean_tables
from lyra.eval.metrics import psnr_pooled
from lyra.eval.report import sheet_rows
from lyra.teacher.conditioning import composite_frames

__all__ = ["SHEET_COLUMNS", "SYSTEMS", "evaluate_teacher_worlds", "markdown_report", "summarize",
           "teacher_metrics", "world_table"]

#: Salt mixed with ``seed`` and the world seed into the sampler seed (the same as ``lyra eval scene``).
SAMPLER_SALT = 19

Log = Callable[[str], None]


def teacher_metrics(teacher: Tensor, warped: Tensor, gt: Tensor, warp_mask: Tensor) -> dict[str, float]:
    """PSNR of the teacher and of the warp-only baseline vs ``gt``, overall and on disoccluded pixels.

    Args:
        teacher: decoded teacher videos ``[V, T, 3, H, W]`` in [0, 1].
        warped: warped videos ``[V, T, 3, H, W]`` (invalid pixels arbitrary: filled by
            :func:`lyra.eval.baselines.fill_holes`).
        gt: ground truth ``[V, T, 3, H, W]``.
        warp_mask: ``[V, T, H, W]`` bool validity of the warp; disoccluded = ``~warp_mask``.

    Frame 0 (the input view) is left out. Returns ``psnr_teacher``, ``psnr_warp``,
    ``psnr_teacher_disoccluded``, ``psnr_warp_disoccluded`` and ``disoccluded_fraction``.
    """
    t, w, g, m = teacher[:, 1:], warped[:, 1:], gt[:, 1:], warp_mask[:, 1:].bool()
    base = fill_holes(w, m)
    holes = ~m
    return {"psnr_teacher": psnr_pooled(t, g), "psnr_warp": psnr_pooled(base, g),
            "psnr_teacher_disoccluded": psnr_pooled(t, g, holes), "psnr_warp_disoccluded": psnr_pooled(base, g, holes),
            "disoccluded_fraction": float(holes.float().mean())}


#: The compared systems (JSON key → name in the reports), in table order.
SYSTEMS = {"teacher": "teacher", "composite": "composite", "filled_warp": "filled warp", "warp": "warp-only",
           "ceiling": "tokenizer ceiling"}
#: The contact sheet's columns.
SHEET_COLUMNS = ("input", "teacher", "composite", "filled warp", "warp-only", "ceiling", "ground truth")


def world_table(teacher: Tensor, warped: Tensor, warp_mask: Tensor, gt: Tensor, ceiling: Tensor,
                input_image: Tensor | None = None, lpips: Any = None) -> tuple[Table, dict[str, Tensor]]:
    """One world's metric table (:func:`lyra.eval.groups.group_metrics`) of the five systems.

    Args:
        teacher, warped, gt, ceiling: ``[V, T, 3, H, W]`` in [0, 1] (``warped``: the teacher's warped input, any
            value where invalid; ``ceiling``: ``gt`` through the tokenizer); warp_mask: ``[V, T, H, W]`` bool
            (disoccluded = false). All on one device; metrics run on the CPU.
        input_image: ``[3, H, W]`` reference of the input-view group (default ``gt[:, 0]``).
        lpips: an LPIPS callable or ``None``.

    Returns:
        ``(table, frames)``: ``table[group][system][metric]``; ``frames`` the RGB videos of every system (CPU).
    """
    holes = ~warp_mask.bool().cpu()
    w = warped.float().cpu().clamp(0, 1)
    t = teacher.float().cpu()
    frames = {"teacher": t, "composite": composite_frames(t, w, ~holes), "filled_warp": inpaint_holes(w, holes),
              "warp": torch.where(holes[:, :, None], torch.ones(()), w), "ceiling": ceiling.float().cpu()}
    table = group_metrics({k: Views(v) for k, v in frames.items()}, gt.float().cpu(), holes=holes,
                          input_image=None if input_image is None else input_image.float().cpu(), lpips=lpips)
    return table, frames


def markdown_report(result: dict[str, Any]) -> str:
    """The Markdown page of a teacher evaluation (``result`` as written to the JSON)."""
    from lyra.eval.report import fmt, group_tables_markdown, winners_markdown

    s = result["setting"]
    rows, mean = result["worlds"], result["mean"]
    g = s.get("groups") or frame_groups(s["frames"])
    near = f"{g['near'][0]}–{g['near'][-1]}" if g["near"] else "none"
    far = f"{g['far'][0]}–{g['far'][-1]}" if g["far"] else "none"
    gain = result.get("gain_db", {})
    lines = [
        f"# Teacher evaluation — {s['depth']} depth, {s['worlds']} held-out "
        + ("dynamic test worlds (the input camera's video through the dynamic 3D cache)" if s.get("dynamic")
           else "test worlds"),
        "",
        f"Teacher `{s['weights']}` (sha256 {s['weights_sha256'][:12]}…), {s['steps']} Euler steps, guidance 1.0, "
        f"seed {s['seed']}; world preset `{s['world_preset']}` ({s['frames']} frames × {s['height']} × {s['width']}), "
        f"test seeds {s['seeds'][0]}–{s['seeds'][-1]}; {s['device']}, {s['date']}. Command: `{s['command']}`.",
        "",
        "Systems: **teacher** — the decoded frames; **composite** — the warp where it has data, the teacher in the "
        "holes (the SDG targets of `lyra sdg --composite`); **filled warp** — the teacher's warped input with its "
        "holes inpainted by OpenCV Telea; **warp-only** — the same warp, white holes; **tokenizer ceiling** — the "
        "ground truth encoded and decoded by the tokenizer, the best a teacher decoded through it can reach.",
        "",
        f"Frame groups (all six trajectories): **input view** = frame 0 against the input image; **near** = frames "
        f"{near}; **far** = frames {far}. Metrics as `lyra eval scene` (mean per world, then over worlds; best of "
        "each column in bold). *Visible* / *holes*: the pixels the warp sees / does not see (PSNR of the MSE pooled "
        "over the group's pixels).",
        "",
        f"**Teacher − warp-only on disoccluded pixels (near + far): {fmt(gain.get('disoccluded_vs_warp'), 2, True)} "
        f"dB; teacher − filled warp there: {fmt(gain.get('disoccluded_vs_filled'), 2, True)} dB; teacher − ceiling "
        f"on visible pixels: {fmt(gain.get('visible_vs_ceiling'), 2, True)} dB.**",
        "",
        *group_tables_markdown(mean, SYSTEMS),
        "**Which system wins each metric** (mean over worlds):",
        "",
        *winners_markdown(mean, SYSTEMS),
        "Per world (PSNR overall / visible / holes, far views):",
        "",
        "| world | family | holes | " + " | ".join(SYSTEMS.values()) + " |",
        "|---|---|---:|" + "---:|" * len(SYSTEMS),
    ]
    for r in rows:
        far_t = r["table"].get("far", {})
        frac = far_t.get("teacher", {}).get("disoccluded_fraction", math.nan)
        cells = [f"{fmt(m.get('psnr'), 2)} / {fmt(m.get('psnr_visible'), 2)} / {fmt(m.get('psnr_disoccluded'), 2)}"
                 for m in (far_t.get(k, {}) for k in SYSTEMS)]
        lines.append(f"| {r['seed']} | {r['family']} | {fmt(100 * frac, 1)} % | " + " | ".join(cells) + " |")
    if s.get("sheet"):
        lines += ["", f"Contact sheet: [{s['sheet']}]({s['sheet']}) — the first {s.get('sheet_worlds', '?')} worlds "
                  "(not chosen), three rows each (input view; the last near frame; the last frame of the "
                  f"`{s['sheet_trajectory']}` trajectory); columns: {' | '.join(SHEET_COLUMNS)}; full size.", "",
                  f"![contact sheet]({s['sheet']})"]
    lines.append("")
    return "\n".join(lines)


def evaluate_teacher_worlds(pipe: Any, seeds: list[int], world_preset: str, steps: int, seed: int = 0,
                            exact_depth: bool = True, dynamic: bool = False, sheet_trajectory: str = "left",
                            progress: bool = False, log: Log | None = None, sheet_worlds: int = 4, lpips: Any = None
                            ) -> tuple[list[dict[str, Any]], list[tuple[str, list[Tensor]]], Any]:
    """The teacher benchmark on test worlds ``seeds`` (see the module doc).

    Args:
        pipe: a loaded :class:`lyra.teacher.pipeline.TeacherPipeline` (static, or ``dynamic=True``).
        seeds: test world seeds (:func:`lyra.eval.scene_benchmark.check_options`).
        world_preset: :mod:`lyra.world` preset name.
        steps, seed: sampler steps; seed mixed with each world seed.
        exact_depth: give the teacher the world's exact depth (else the pipeline's estimator runs).
        dynamic: dynamic worlds (the input camera's video through the dynamic 3D cache).
        sheet_trajectory: the trajectory whose frames go into the contact sheet.
        log: one line per world (default: silent).
        sheet_worlds: how many worlds (the first ones) get contact-sheet rows.
        lpips: an LPIPS callable or ``None``.

    Returns:
        ``(rows, sheet, last_example)``: one row per world (``seed``, ``family``, ``center_depth``, ``table``
        (:func:`world_table`), ``seconds``); contact-sheet rows (three per world, columns :data:`SHEET_COLUMNS`);
        the last world's example (for the frame count and size).
    """
    from lyra.geometry.trajectories import TRAJECTORY_NAMES
    from lyra.seeds import mix_seed
    from lyra.world import load_example

    rows: list[dict[str, Any]] = []
    cells: list[tuple[str, list[Tensor]]] = []
    v_sheet = TRAJECTORY_NAMES.index(sheet_trajectory)
    ex = None
    for s in seeds:
        t0 = time.perf_counter()
        ex = load_example(s, world_preset, str(pipe.device), dynamic=dynamic).to("cpu")
        common = {"camera": ex.cameras[0, 0], "trajectories": ex.cameras, "names": TRAJECTORY_NAMES,
                  "seed": mix_seed(seed, s, SAMPLER_SALT) % 2**31, "steps": steps, "progress": progress}
        if dynamic:  # a static input camera filming the moving scene; GT trajectory frame f shows time t_f
            out = pipe(video=ex.input_video, video_depth=ex.input_depths if exact_depth else None, times=ex.times,
                       **common)
        else:
            out = pipe(ex.image, depth=ex.depth if exact_depth else None, **common)
        video = pipe.decode(out)
        with torch.no_grad():
            ceiling = pipe.tokenizer.roundtrip(ex.videos.to(pipe.tokenizer.device))
        table, frames = world_table(video, out.conditions.rgb, out.conditions.mask, ex.videos, ceiling,
                                    ex.image, lpips)
        rows.append({"seed": s, "family": ex.family, "center_depth": ex.center_depth, "table": table,
                     "seconds": time.perf_counter() - t0})
        if len(rows) <= sheet_worlds:
            frames["gt"] = ex.videos
            cells += sheet_rows(f"{s} {ex.family}", ex.image, frames, v_sheet, tuple(SYSTEMS))
        if log is not None:
            f = table["far"]
            log(f"  world {s:>3} ({ex.family:7}): far PSNR teacher {f['teacher']['psnr']:.2f} / filled warp "
                f"{f['filled_warp']['psnr']:.2f} / ceiling {f['ceiling']['psnr']:.2f} dB; holes "
                f"({100 * f['teacher']['disoccluded_fraction']:.1f} %) {f['teacher']['psnr_disoccluded']:.2f} / "
                f"{f['filled_warp']['psnr_disoccluded']:.2f} / {f['warp']['psnr_disoccluded']:.2f} dB (warp-only); "
                f"SSIM {f['teacher']['ssim']:.3f} / {f['filled_warp']['ssim']:.3f} / {f['ceiling']['ssim']:.3f} "
                f"({rows[-1]['seconds']:.1f} s)")
    return rows, cells, ex


def summarize(rows: list[dict[str, Any]]) -> tuple[Table, dict[str, float]]:
    """``(mean, gain_db)``: the tables averaged over worlds (:func:`lyra.eval.groups.mean_tables`), and the
    teacher's margins (issue 18's targets): ``disoccluded_vs_warp`` / ``disoccluded_vs_filled`` (teacher minus
    warp-only / filled warp, PSNR on disoccluded pixels) and ``visible_vs_ceiling`` (teacher minus the tokenizer
    ceiling on visible pixels), each the mean of the near and far groups."""
    mean = mean_tables([r["table"] for r in rows])

    def diff(metric: str, a: str, b: str) -> float:
        vals = [mean[g][a][metric] - mean[g][b][metric] for g in ("near", "far")
                if g in mean and math.isfinite(mean[g][a].get(metric, math.nan) - mean[g][b].get(metric, math.nan))]
        return sum(vals) / len(vals) if vals else math.nan

    return mean, {"disoccluded_vs_warp": diff("psnr_disoccluded", "teacher", "warp"),
                  "disoccluded_vs_filled": diff("psnr_disoccluded", "teacher", "filled_warp"),
                  "visible_vs_ceiling": diff("psnr_visible", "teacher", "ceiling")}
