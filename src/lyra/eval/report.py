"""The files of an evaluation: output-folder checks, the contact sheet, and the md + json + png triple."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor

from lyra.errors import OutputPathError

__all__ = ["check_out_dir", "contact_sheet", "write_report"]


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a Path; OutputPathError unless it is a folder or can be created (its parent exists)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError(f"--out {out_dir}: exists and is not a folder")
    if not out_dir.exists() and not (out_dir.parent if str(out_dir.parent) else Path(".")).is_dir():
        raise OutputPathError(f"--out {out_dir}: folder {out_dir.parent} does not exist (create it first)")
    return out_dir


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


def write_report(out_dir: Path, stem: str, result: dict[str, Any], sheet: Any, markdown: str) -> None:
    """Write ``STEM.json`` (``result``), ``STEM.png`` (``sheet``, a PIL image) and ``STEM.md`` into ``out_dir``
    (created if missing), each atomically."""
    from lyra.fileio import atomic_path

    out_dir.mkdir(exist_ok=True)
    with atomic_path(out_dir / f"{stem}.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float) + "\n")
    with atomic_path(out_dir / f"{stem}.png") as tmp:
        sheet.save(tmp, format="PNG")
    with atomic_path(out_dir / f"{stem}.md") as tmp:
        tmp.write_text(markdown)
