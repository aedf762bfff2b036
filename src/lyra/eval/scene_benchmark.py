"""The product benchmark: image → 3D Gaussians → novel views, against exact ground truth (``lyra eval scene``).

For each of the first N held-out test worlds (:mod:`lyra.world`, split ``test``; the example centre-cropped to
multiples of 16 pixels as the teacher evaluation does, :func:`lyra.world.load_example`):

1. the world's input image goes through :class:`lyra.pipeline.ScenePipeline` exactly as a user's photo would,
   except that the teacher follows the world's own six ground-truth trajectory cameras (``Cameras [6, T]``,
   frame 0 = the input camera) so that every generated view has a ground-truth frame; the depth is the tiny
   depth net's estimate (``depth="tiny"``, what a user gets) or the world's exact depth (``"exact"``);
2. the delivered Gaussians (pruned, as :func:`lyra.pipeline.generate` returns them) are rendered at the GT
   cameras (:func:`lyra.render.render`, white background);
3. frames ``1 … T−1`` of all six trajectories (frame 0 is the input view) are compared with the GT renders.

Two references beside the **student**:

* **warp-only** — the input image lifted to one Gaussian per pixel with the depth the teacher warped with
  (:func:`lyra.gaussians.gaussians_from_depth`) and rendered at the same cameras: what 3D costs without any
  generation (the baseline of :func:`lyra.eval.student_benchmark.evaluate_gt`);
* **teacher** — the teacher's own decoded frames (``decode_videos=True``): the views the student distils.

Metrics (:mod:`lyra.eval.metrics`, LYRA_FACTS "Metrics as released"): PSNR per frame on [0, 1], SSIM
(Gaussian 11 × 11, σ 1.5) per frame, LPIPS(VGG16) per frame when local weights are found
(:func:`lyra.distill.losses.find_lpips_weights`); averaged per world (infinite PSNR of identical frames left
out), then over worlds. The target of issue 9: mean novel-view PSNR of the student ≥ warp-only + 3 dB.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lyra.errors import ConfigError
from lyra.gaussians import Gaussians
from lyra.geometry.cameras import Cameras

__all__ = ["SYSTEMS", "TARGET_GAIN_DB", "evaluate_scenes", "evaluate_world", "markdown_report", "render_frames",
           "scene_metrics", "warp_only_gaussians"]

#: The compared systems, in table order.
SYSTEMS = ("student", "warp", "teacher")
#: Issue 9's target: the student's novel-view PSNR at least this many dB above warp-only.
TARGET_GAIN_DB = 3.0
#: Salt mixed with ``seed`` and the world seed into the sampler seed (the same as ``lyra eval teacher``, so
#: that with exact depth both evaluations sample the same teacher latents).
SAMPLER_SALT = 19

Log = Callable[[str], None]


def render_frames(gaussians: Gaussians, cameras: Cameras, backend: str = "auto", chunk: int = 16) -> Tensor:
    """Render ``gaussians`` at every camera of ``cameras`` (batch shape ``[...]``) → RGB ``[..., 3, H, W]`` in
    [0, 1], white background, ``chunk`` cameras at a time (bounded memory on the torch backend). No Gaussians:
    the white background."""
    from lyra.render import render

    H, W = cameras.height, cameras.width
    if len(gaussians) == 0:
        return torch.ones(*cameras.shape, 3, H, W, device=gaussians.means.device)
    flat = cameras.flatten().to(gaussians.means.device)
    out = [render(gaussians, flat[i:i + chunk], backend=backend).rgb for i in range(0, flat.shape[0], chunk)]
    return torch.cat(out).clamp(0, 1).reshape(*cameras.shape, H, W, 3).movedim(-1, -3)


def warp_only_gaussians(image: Tensor, depth: Tensor, camera: Cameras) -> Gaussians:
    """The warp-only baseline: one Gaussian per pixel of ``image`` ``[3, H, W]`` at z-depth ``depth`` ``[H, W]``
    seen from ``camera`` (batch shape ``[]``); pixels of non-finite depth (sky) are left out."""
    from lyra.gaussians.from_depth import gaussians_from_depth

    return gaussians_from_depth(image[None].float(), depth[None].float(), camera.reshape(1))


def scene_metrics(preds: dict[str, Tensor], gt: Tensor, lpips: Any = None) -> dict[str, float]:
    """Per-world PSNR / SSIM (/ LPIPS) of each prediction against ``gt``.

    Args:
        preds: name → frames ``[..., 3, H, W]`` in [0, 1] (the same shape as ``gt``).
        gt: ground-truth frames ``[..., 3, H, W]``.
        lpips: a loaded :class:`lyra.distill.losses.LPIPSVGG` or ``None`` (no LPIPS keys).

    Returns:
        ``psnr_<name>`` (mean of the finite per-frame PSNRs), ``ssim_<name>`` (mean per-frame SSIM) and, with
        ``lpips``, ``lpips_<name>`` (mean per-frame distance).
    """
    from lyra.eval.metrics import mean_finite, psnr, ssim

    out: dict[str, float] = {}
    g = gt.float().reshape(-1, *gt.shape[-3:])
    for name, pred in preds.items():
        if pred.shape != gt.shape:
            raise ValueError(f"{name}: frames {tuple(pred.shape)} do not match the ground truth {tuple(gt.shape)}")
        p = pred.float().clamp(0, 1).reshape(-1, *pred.shape[-3:]).to(g.device)
        out[f"psnr_{name}"] = mean_finite(psnr(p, g))
        out[f"ssim_{name}"] = float(ssim(p, g).mean())
        if lpips is not None:
            with torch.no_grad():
                d = torch.cat([lpips(p[i:i + 16], g[i:i + 16]) for i in range(0, p.shape[0], 16)])
            out[f"lpips_{name}"] = float(d.mean())
    return out


@torch.no_grad()
def evaluate_world(pipe: Any, example: Any, exact_depth: bool, seed: int, steps: int, lpips: Any = None,
                   backend: str = "auto", progress: bool = False) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """One world: its input image → :class:`~lyra.pipeline.Scene` along its GT trajectories → metrics.

    Args:
        pipe: a loaded :class:`lyra.pipeline.ScenePipeline`.
        example: a :class:`lyra.world.Example` (sides multiples of 16; CPU).
        exact_depth: give the teacher the world's exact input depth (else the pipeline's estimator runs).
        seed: the sampler seed (the world's GT trajectories make the trajectory draw unused).
        lpips: see :func:`scene_metrics`.

    Returns:
        ``(row, frames)``: ``row`` holds the :func:`scene_metrics` keys, ``gain_db`` (student − warp-only PSNR),
        ``gaussians``, ``warp_gaussians``, ``max_camera_offset`` (largest distance between the scene's and the
        GT camera centres: 0 when the teacher followed the GT cameras) and ``timings_s``; ``frames`` holds
        full videos ``[V, T, 3, H, W]`` (CPU) ``student``, ``warp``, ``teacher``, ``gt``.
    """
    ex = example
    H, W = ex.image.shape[-2:]
    scene = pipe(ex.image, seed=seed, steps=steps, size=(H, W), trajectory=ex.cameras,
                 depth_map=ex.depth if exact_depth else None, progress=progress, decode_videos=True)
    dev = pipe.device
    cams = ex.cameras
    t0 = time.perf_counter()
    warp_g = warp_only_gaussians(ex.image, scene.depth, cams[0, 0]).to(dev)
    frames = {
        "student": render_frames(scene.gaussians.to(dev), cams, backend),
        "warp": render_frames(warp_g, cams, backend),
        "teacher": scene.videos.to(dev).float(),
    }
    gt = ex.videos.to(dev).float()
    render_s = time.perf_counter() - t0
    row: dict[str, Any] = scene_metrics({k: v[:, 1:] for k, v in frames.items()}, gt[:, 1:], lpips)
    row["gain_db"] = row["psnr_student"] - row["psnr_warp"]
    row["gaussians"] = len(scene.gaussians)
    row["warp_gaussians"] = len(warp_g)
    row["max_camera_offset"] = float((scene.cameras.centers - cams.centers).norm(dim=-1).max())
    row["timings_s"] = {**scene.metadata["timings_s"], "render_and_metrics": round(time.perf_counter() - t0, 4),
                        "render": round(render_s, 4)}
    frames = {k: v.detach().cpu() for k, v in frames.items()}
    frames["gt"] = ex.videos.cpu()
    return row, frames


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    vals = [float(r[key]) for r in rows if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return sum(vals) / len(vals) if vals else math.nan


def evaluate_scenes(pipe: Any, worlds: int = 8, world_preset: str = "tiny", steps: int = 35, seed: int = 0,
                    exact_depth: bool = False, sheet_trajectory: str = "left", lpips: Any = None,
                    backend: str = "auto", progress: bool = False, log: Log | None = None
                    ) -> tuple[dict[str, Any], list[tuple[str, list[Tensor]]]]:
    """The scene benchmark on the first ``worlds`` test worlds (see the module doc).

    Args:
        pipe: a loaded :class:`lyra.pipeline.ScenePipeline` (its device runs everything).
        worlds: number of test worlds (test seeds ``0 … worlds−1`` of :func:`lyra.world.split_seeds`).
        world_preset: :mod:`lyra.world` preset (``tiny``: 17 × 176 × 320; ``micro`` for tests).
        steps, seed: sampler steps; seed mixed with each world seed (as ``lyra eval teacher``).
        exact_depth: the world's depth instead of the pipeline's estimate.
        sheet_trajectory: the trajectory whose last frame goes into the contact-sheet cells.
        lpips: a loaded LPIPS(VGG) (adds ``lpips_*`` keys) or ``None``.
        log: one line per world (default: silent).

    Returns:
        ``(result, cells)``: ``result`` with ``worlds`` (one row per world: ``seed``, ``family``,
        ``center_depth``, the :func:`evaluate_world` keys, ``seconds``), ``mean`` (the metric keys averaged over
        worlds) and ``gain_db`` (``student_vs_warp``, ``target``, ``met``); ``cells`` for
        :func:`lyra.eval.report.contact_sheet`: per world ``(label, [input, warp-only, student, teacher, GT])``,
        images ``[3, H, W]``.

    Raises:
        ConfigError: bad ``worlds``, ``steps``, ``seed``, ``world_preset`` or ``sheet_trajectory``.
    """
    from lyra.geometry.trajectories import TRAJECTORY_NAMES
    from lyra.pipeline import PRUNE_RATIO
    from lyra.train.runtime import mix_seed
    from lyra.world import get_preset, load_example

    seeds = check_options(worlds, steps, seed, sheet_trajectory)
    preset = get_preset(world_preset)
    v_sheet = TRAJECTORY_NAMES.index(sheet_trajectory)
    rows: list[dict[str, Any]] = []
    cells: list[tuple[str, list[Tensor]]] = []
    for s in seeds:
        t0 = time.perf_counter()
        ex = load_example(s, preset.name, str(pipe.device)).to("cpu")
        if ex.cameras.shape[0] != len(TRAJECTORY_NAMES):
            raise ConfigError(f"world {s} has {ex.cameras.shape[0]} trajectories, expected {len(TRAJECTORY_NAMES)}")
        row, fr = evaluate_world(pipe, ex, exact_depth, mix_seed(seed, s, SAMPLER_SALT) % 2**31, steps, lpips,
                                 backend, progress)
        rows.append({"seed": s, "family": ex.family, "center_depth": float(ex.center_depth), **row,
                     "seconds": time.perf_counter() - t0})
        last = fr["gt"].shape[1] - 1
        cells.append((f"{s} {ex.family}", [ex.image, fr["warp"][v_sheet, last], fr["student"][v_sheet, last],
                                           fr["teacher"][v_sheet, last], fr["gt"][v_sheet, last]]))
        if log is not None:
            log(f"  world {s:>3} ({ex.family:7}): PSNR student {row['psnr_student']:.2f} / warp-only "
                f"{row['psnr_warp']:.2f} / teacher {row['psnr_teacher']:.2f} dB ({row['gain_db']:+.2f}); SSIM "
                f"{row['ssim_student']:.3f} / {row['ssim_warp']:.3f} / {row['ssim_teacher']:.3f} "
                f"({rows[-1]['seconds']:.1f} s)")
    keys = [f"{m}_{w}" for m in ("psnr", "ssim") + (("lpips",) if lpips is not None else ()) for w in SYSTEMS]
    mean = {k: _mean(rows, k) for k in keys}
    mean["gain_db"] = mean["psnr_student"] - mean["psnr_warp"]
    gain = mean["gain_db"]
    result = {
        "setting": {"worlds": len(seeds), "seeds": seeds, "world_preset": preset.name, "steps": steps, "seed": seed,
                    "depth": "exact" if exact_depth else "estimate", "frames": int(ex.videos.shape[1]),
                    "height": int(ex.videos.shape[-2]), "width": int(ex.videos.shape[-1]),
                    "frames_compared": "1..T-1 of all six trajectories", "sheet_trajectory": sheet_trajectory,
                    "lpips": lpips is not None, "prune_ratio": PRUNE_RATIO, "backend": backend},
        "mean": mean,
        "gain_db": {"student_vs_warp": gain, "target": TARGET_GAIN_DB,
                    "met": bool(math.isfinite(gain) and gain >= TARGET_GAIN_DB)},
        "worlds": rows,
    }
    return result, cells


def check_options(worlds: int, steps: int, seed: int, sheet_trajectory: str) -> list[int]:
    """Validate the benchmark options (ConfigError with what to do); return the test seeds to evaluate."""
    from lyra.geometry.trajectories import TRAJECTORY_NAMES
    from lyra.world import split_seeds

    all_seeds = list(split_seeds("test"))
    if isinstance(worlds, bool) or not isinstance(worlds, int) or worlds < 1:
        raise ConfigError(f"--worlds must be >= 1, got {worlds}")
    if worlds > len(all_seeds):
        raise ConfigError(f"--worlds: the test split holds {len(all_seeds)} worlds, got {worlds}")
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    if seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed}")
    if sheet_trajectory not in TRAJECTORY_NAMES:
        raise ConfigError(f"--sheet-trajectory must be one of {', '.join(TRAJECTORY_NAMES)}, got {sheet_trajectory!r}")
    return all_seeds[:worlds]


def _fmt(v: Any, digits: int, sign: bool = False) -> str:
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "–"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def markdown_report(result: dict[str, Any]) -> str:
    """The Markdown page of a scene evaluation (``result`` as :func:`evaluate_scenes` returns it, plus the
    ``setting`` keys ``student``, ``student_sha256``, ``device``, ``date``, ``command``, ``sheet`` when present)."""
    s = result["setting"]
    rows, mean, gain = result["worlds"], result["mean"], result["gain_db"]
    has_lpips = bool(s.get("lpips"))
    depth = "the world's exact depth" if s["depth"] == "exact" else "the tiny depth net's estimate"
    verdict = "met" if gain["met"] else "missed"
    lines = [
        f"# Scene evaluation — {s['worlds']} held-out test worlds, "
        f"{'exact' if s['depth'] == 'exact' else 'estimated'} depth",
        "",
        f"Image → 3D through `lyra.pipeline.ScenePipeline` with {depth}; student `{s.get('student', '?')}`"
        + (f" (sha256 {str(s['student_sha256'])[:12]}…)" if s.get("student_sha256") else "")
        + f"; teacher {s['steps']} Euler steps, seed {s['seed']}, following each world's six ground-truth "
        f"trajectories; world preset `{s['world_preset']}` ({s['frames']} frames × {s['height']} × {s['width']}), "
        f"test seeds {s['seeds'][0]}–{s['seeds'][-1]}"
        + (f"; {s['device']}, {s['date']}" if s.get("device") else "") + "."
        + (f" Command: `{s['command']}`." if s.get("command") else ""),
        "",
        "Frames 1..T−1 of all six trajectories (frame 0 is the input view) against the ground-truth renders. "
        "**Student**: the delivered (pruned) Gaussians rendered at the GT cameras. **Warp-only**: the input image "
        "lifted to one Gaussian per pixel with the same input depth, rendered at the same cameras (white where "
        "nothing projects). **Teacher**: the teacher's decoded frames. PSNR per frame on [0, 1], SSIM Gaussian "
        "11×11 per frame; mean per world, then over worlds."
        + (" LPIPS: VGG16, lpips v0.1 linear layers." if has_lpips else
           " LPIPS omitted: no local VGG16/LPIPS weights (--lpips-weights FILE or $LYRA_LPIPS_WEIGHTS)."),
        "",
        f"**Target: novel-view PSNR ≥ warp-only + {gain['target']:g} dB: {verdict}** "
        f"(student − warp-only: {_fmt(gain['student_vs_warp'], 2, True)} dB mean over worlds).",
        "",
    ]
    head = ["world", "family", "PSNR student", "PSNR warp-only", "PSNR teacher", "gain (student − warp)",
            "SSIM student", "SSIM warp-only", "SSIM teacher"]
    if has_lpips:
        head += ["LPIPS student", "LPIPS warp-only", "LPIPS teacher"]
    lines += ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]

    def row(label: str, fam: str, r: dict[str, Any], b: str = "") -> str:
        cells = [f"{b}{label}{b}", fam]
        cells += [b + _fmt(r.get(f"psnr_{w}"), 2) + b for w in SYSTEMS]
        cells.append(b + _fmt(r.get("gain_db"), 2, True) + b)
        cells += [b + _fmt(r.get(f"ssim_{w}"), 3) + b for w in SYSTEMS]
        if has_lpips:
            cells += [b + _fmt(r.get(f"lpips_{w}"), 3) + b for w in SYSTEMS]
        return "| " + " | ".join(cells) + " |"

    lines += [row(str(r["seed"]), r["family"], r) for r in rows] + [row("mean", "", mean, "**")]
    if s.get("sheet"):
        lines += ["", f"Contact sheet: [{s['sheet']}]({s['sheet']}) — rows: worlds; columns: input | warp-only | "
                  f"student | teacher | ground truth, last frame of the `{s['sheet_trajectory']}` trajectory."]
    lines.append("")
    return "\n".join(lines)
