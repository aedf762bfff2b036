"""The teacher benchmark (``lyra eval teacher``): the teacher's decoded videos on held-out test worlds against
the ground-truth renders, next to the warp-only baseline and the tokenizer ceiling.

For each of the first N held-out test worlds (:mod:`lyra.world`, split ``test``; :func:`lyra.world.load_example`,
cropped to multiples of 16 pixels) the input image and depth (exact, or a depth estimator's) are warped along the
world's six ground-truth trajectories, the teacher samples and the tokenizer decodes; frames ``1 … T−1`` (frame 0
is the input) are compared with the ground-truth renders: PSNR (MSE pooled over the world's frames,
:func:`lyra.eval.metrics.psnr_pooled`) and SSIM (mean over frames), overall and on the disoccluded pixels (where
the warp has no data). Baselines: warp-only (the warped frames with holes filled by nearest-valid diffusion,
:func:`lyra.eval.baselines.fill_holes`) and the tokenizer ceiling (the ground truth encoded and decoded by the
tokenizer: the best any teacher decoded through it can reach). Dynamic worlds (``dynamic=True``): the teacher
reads the input camera's video through the dynamic 3D cache.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lyra.errors import ConfigError
from lyra.eval.baselines import fill_holes
from lyra.eval.metrics import psnr_pooled, ssim_map

__all__ = ["METRIC_KEYS", "check_options", "evaluate_teacher_worlds", "markdown_report", "summarize",
           "teacher_metrics", "world_metrics"]

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


def _ssim_values(pred: Tensor, gt: Tensor, holes: Tensor) -> tuple[float, float]:
    """Mean SSIM over frames ``[..., 3, H, W]`` and mean SSIM-map value at disoccluded pixels (window
    centres where ``holes`` ``[..., H, W]`` is true; ``nan`` if none)."""
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

    Returns the keys of :func:`teacher_metrics` (same definitions: PSNR of the MSE pooled over all frames and
    trajectories) plus ``psnr_ceiling[_disoccluded]`` and
    ``ssim_{teacher,warp,ceiling}[_disoccluded]``.
    """
    t, w, g, c = teacher[:, 1:], warped[:, 1:], gt[:, 1:], ceiling[:, 1:]
    m = warp_mask[:, 1:].bool()
    holes = ~m
    base = fill_holes(w, m)
    out = {"psnr_teacher": psnr_pooled(t, g), "psnr_warp": psnr_pooled(base, g), "psnr_ceiling": psnr_pooled(c, g),
           "psnr_teacher_disoccluded": psnr_pooled(t, g, holes), "psnr_warp_disoccluded": psnr_pooled(base, g, holes),
           "psnr_ceiling_disoccluded": psnr_pooled(c, g, holes), "disoccluded_fraction": float(holes.float().mean())}
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


def check_options(worlds: int, steps: int, sheet_trajectory: str) -> list[int]:
    """Validate the benchmark options (ConfigError with what to do); return the test seeds to evaluate."""
    from lyra.geometry.trajectories import TRAJECTORY_NAMES
    from lyra.world import split_seeds

    if worlds < 1:
        raise ConfigError(f"--worlds must be >= 1, got {worlds}")
    seeds = list(split_seeds("test"))
    if worlds > len(seeds):
        raise ConfigError(f"--worlds: the test split holds {len(seeds)} worlds, got {worlds}")
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    if sheet_trajectory not in TRAJECTORY_NAMES:
        raise ConfigError(f"--sheet-trajectory must be one of {', '.join(TRAJECTORY_NAMES)}")
    return seeds[:worlds]


def evaluate_teacher_worlds(pipe: Any, seeds: list[int], world_preset: str, steps: int, seed: int = 0,
                            exact_depth: bool = True, dynamic: bool = False, sheet_trajectory: str = "left",
                            progress: bool = False, log: Log | None = None
                            ) -> tuple[list[dict[str, Any]], list[tuple[str, list[Tensor]]], Any]:
    """The teacher benchmark on test worlds ``seeds`` (see the module doc).

    Args:
        pipe: a loaded :class:`lyra.teacher.pipeline.TeacherPipeline` (static, or ``dynamic=True``).
        seeds: test world seeds (:func:`check_options`).
        world_preset: :mod:`lyra.world` preset name.
        steps, seed: sampler steps; seed mixed with each world seed.
        exact_depth: give the teacher the world's exact depth (else the pipeline's estimator runs).
        dynamic: dynamic worlds (the input camera's video through the dynamic 3D cache).
        sheet_trajectory: the trajectory whose last frame goes into the contact-sheet cells.
        log: one line per world (default: silent).

    Returns:
        ``(rows, cells, last_example)``: one row per world (``seed``, ``family``, ``center_depth``, the
        :func:`world_metrics` keys, ``seconds``); contact-sheet cells ``(label, [input, warped, teacher, GT])``;
        the last world's example (for the frame count and size).
    """
    from lyra.geometry.trajectories import TRAJECTORY_NAMES
    from lyra.train.runtime import mix_seed
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
        dev = pipe.device  # the metrics (hole filling, SSIM) are heavy on the CPU: run them where the model runs
        m = world_metrics(video.to(dev), out.conditions.rgb.to(dev), out.conditions.mask.to(dev), ex.videos.to(dev),
                          ceiling.to(dev))
        rows.append({"seed": s, "family": ex.family, "center_depth": ex.center_depth, **m,
                     "seconds": time.perf_counter() - t0})
        last = ex.videos.shape[1] - 1
        cells.append((f"{s} {ex.family}", [ex.image, out.conditions.rgb[v_sheet, last], video[v_sheet, last],
                                           ex.videos[v_sheet, last]]))
        if log is not None:
            log(f"  world {s:>3} ({ex.family:7}): PSNR teacher {m['psnr_teacher']:.2f} / warp-only "
                f"{m['psnr_warp']:.2f} / ceiling {m['psnr_ceiling']:.2f} dB; "
                f"disoccluded ({100 * m['disoccluded_fraction']:.1f} %) "
                f"{m['psnr_teacher_disoccluded']:.2f} / {m['psnr_warp_disoccluded']:.2f} / "
                f"{m['psnr_ceiling_disoccluded']:.2f} dB; SSIM {m['ssim_teacher']:.3f} / {m['ssim_warp']:.3f} / "
                f"{m['ssim_ceiling']:.3f} ({rows[-1]['seconds']:.1f} s)")
    return rows, cells, ex


def summarize(rows: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """``(mean, gain_db)``: the :data:`METRIC_KEYS` averaged over worlds (finite values), and the teacher's gain
    over warp-only (``overall``, ``disoccluded``; ``target`` 2 dB)."""
    mean = {k: _mean(rows, k) for k in METRIC_KEYS}
    gain = {"overall": mean["psnr_teacher"] - mean["psnr_warp"],
            "disoccluded": mean["psnr_teacher_disoccluded"] - mean["psnr_warp_disoccluded"], "target": 2.0}
    return mean, gain
