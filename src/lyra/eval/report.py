"""The files of an evaluation: metric tables in Markdown, contact sheets, repo-relative paths, output-folder checks
and the md + json + png triple.

Every evaluator (``lyra eval scene``, ``lyra eval teacher``, the student's fidelity) renders its
:data:`lyra.eval.groups.Table` with :func:`group_tables_markdown` and its pictures with :func:`contact_sheet`, so
the pages read alike.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from torch import Tensor

from lyra.errors import OutputPathError
from lyra.eval.groups import FRAME_GROUPS, Table, best_system, frame_groups, winners

__all__ = ["METRIC_LABELS", "check_out_dir", "contact_sheet", "display_path", "fmt", "group_tables_markdown",
           "sheet_rows", "winners_markdown", "write_report"]

#: Column headings and number formats of the metrics, in report order.
METRIC_LABELS: dict[str, tuple[str, int]] = {
    "psnr": ("PSNR ↑", 2), "ssim": ("SSIM ↑", 3), "ms_ssim": ("MS-SSIM ↑", 3), "gmsd": ("GMSD ↓", 3),
    "lpips": ("LPIPS ↓", 3), "sharpness": ("sharpness →1", 2), "abs_rel": ("depth AbsRel ↓", 3),
    "delta1": ("depth δ<1.25 ↑", 3), "coverage": ("coverage ↑", 3),
    "psnr_visible": ("PSNR visible ↑", 2), "psnr_disoccluded": ("PSNR holes ↑", 2),
    "ssim_disoccluded": ("SSIM holes ↑", 3),
    "sharpness_disoccluded": ("sharpness holes →1", 2),
}
GROUP_TITLES = {"input": "Input view (frame 0, against the input image)",
                "near": "Near views (the first quarter of each trajectory after frame 0)",
                "far": "Far views (the rest of each trajectory)"}

_REPO = Path(__file__).resolve().parents[3]


def display_path(path: str | os.PathLike | None) -> str:
    """``path`` as a report should name it: relative to the repository when inside it (``src/lyra/weights/…``),
    else relative to the working directory when inside that, else only its last two parts — never an absolute
    path of the machine the report ran on."""
    if path is None:
        return "–"
    p = Path(path).resolve()
    for base in (_REPO, Path.cwd()):
        try:
            return p.relative_to(base).as_posix() or "."
        except ValueError:
            continue
    return "/".join(p.parts[-2:])


def fmt(v: Any, digits: int, sign: bool = False) -> str:
    """A number for a table cell: ``–`` for missing or non-finite values."""
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "–"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def group_tables_markdown(table: Table, labels: dict[str, str], metrics: tuple[str, ...] | None = None) -> list[str]:
    """One Markdown table per frame group: rows = systems (``labels``: key → shown name, in order), columns = the
    metrics present; the best value of each column in bold."""
    lines: list[str] = []
    for group in FRAME_GROUPS:
        if group not in table:
            continue
        systems = [s for s in labels if s in table[group]]
        present = [m for m in (metrics or tuple(METRIC_LABELS))
                   if any(m in table[group][s] for s in systems)]
        lines += [f"**{GROUP_TITLES[group]}**", "",
                  "| system | " + " | ".join(METRIC_LABELS[m][0] for m in present) + " |",
                  "|---|" + "---:|" * len(present)]
        best = {m: best_system({s: table[group][s].get(m, math.nan) for s in systems}, m) for m in present}
        for s in systems:
            cells = []
            for m in present:
                c = fmt(table[group][s].get(m), METRIC_LABELS[m][1])
                cells.append(f"**{c}**" if best[m] == s and c != "–" else c)
            lines.append(f"| {labels[s]} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def winners_markdown(table: Table, labels: dict[str, str]) -> list[str]:
    """A Markdown table: which system wins each metric in each group (↑ higher, ↓ lower, →1 closest to 1)."""
    win = winners(table)
    metrics = [m for m in METRIC_LABELS if any(m in w for w in win.values())]
    lines = ["| group | " + " | ".join(METRIC_LABELS[m][0] for m in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for group in FRAME_GROUPS:
        if group in win:
            lines.append(f"| {group} | " + " | ".join(labels.get(win[group].get(m, ""), "–") for m in metrics) + " |")
    return [*lines, ""]


def sheet_rows(label: str, image: Tensor, frames: dict[str, Tensor], trajectory: int,
               systems: tuple[str, ...]) -> list[tuple[str, list[Tensor]]]:
    """The contact-sheet rows of one world: one per frame group (the input view, the last near frame, the last
    frame of trajectory ``trajectory``), columns ``image`` | each of ``systems`` | ground truth.

    Args:
        image: the input image ``[3, H, W]``; frames: name → videos ``[V, T, 3, H, W]``, holding each of
            ``systems`` and ``"gt"``.
    """
    idx = frame_groups(frames["gt"].shape[1])
    rows = []
    for group in FRAME_GROUPS:
        if idx[group]:
            f = idx[group][-1]
            rows.append((f"{label} {group} f{f}", [image] + [frames[k][trajectory, f] for k in (*systems, "gt")]))
    return rows


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a Path; OutputPathError unless it is a folder or can be created (its parent exists)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError(f"--out {out_dir}: exists and is not a folder")
    if not out_dir.exists() and not (out_dir.parent if str(out_dir.parent) else Path(".")).is_dir():
        raise OutputPathError(f"--out {out_dir}: folder {out_dir.parent} does not exist (create it first)")
    return out_dir


def contact_sheet(cells: list[tuple[str, list[Tensor]]], labels: tuple[str, ...]) -> Any:
    """A PIL image: one row per ``(row label, [images [3, H, W] in [0, 1]])``, a header with ``labels``.

    Images are pasted at full size; rows and columns take the height and width of their largest image (all the
    same for most evaluations; the real-image benchmark mixes aspect ratios)."""
    import numpy as np
    from PIL import Image, ImageDraw

    head, gap = 14, 2
    ncol = len(labels)
    widths = [max((int(imgs[j].shape[-1]) for _, imgs in cells if j < len(imgs)), default=0) for j in range(ncol)]
    heights = [max(int(img.shape[-2]) for img in imgs) for _, imgs in cells]
    xs = [sum(widths[:j]) + j * gap for j in range(ncol)]
    sheet = Image.new("RGB", (sum(widths) + gap * (ncol - 1), head + sum(heights) + gap * len(cells)),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, lab in enumerate(labels):
        draw.text((xs[j] + 3, 1), lab, fill=(0, 0, 0))
    y = head
    for (row_label, imgs), h in zip(cells, heights, strict=True):
        for j, img in enumerate(imgs):
            a = (img.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
            sheet.paste(Image.fromarray(a), (xs[j], y))
        draw.rectangle((0, y, 6 * len(row_label) + 4, y + 11), fill=(0, 0, 0))
        draw.text((2, y), row_label, fill=(255, 255, 255))
        y += h + gap
    return sheet


def write_report(out_dir: Path, stem: str, result: dict[str, Any], sheet: Any, markdown: str) -> None:
    """Write ``STEM.json`` (``result``), ``STEM.png`` (``sheet``, a PIL image; none when ``sheet`` is ``None``) and
    ``STEM.md`` into ``out_dir`` (created if missing), each atomically."""
    from lyra.fileio import atomic_path

    out_dir.mkdir(exist_ok=True)
    with atomic_path(out_dir / f"{stem}.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float) + "\n")
    if sheet is not None:
        with atomic_path(out_dir / f"{stem}.png") as tmp:
            sheet.save(tmp, format="PNG")
    with atomic_path(out_dir / f"{stem}.md") as tmp:
        tmp.write_text(markdown)
