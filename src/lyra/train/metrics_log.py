"""A CSV log of training metrics: one row per logged step, columns fixed by the first row.

On resume the rows past the resumed step (written after the last checkpoint by a run that was then
stopped) are dropped, so the log of a resumed run reads as one uninterrupted run.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from lyra.fileio import atomic_path


class MetricsLog:
    """Append rows ``{"step": int, name: float, ...}`` to ``path`` (created on first write)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.fields: list[str] | None = None
        if self.path.is_file():
            with self.path.open(newline="") as f:
                header = next(csv.reader(f), None)
            self.fields = header or None

    def truncate_after(self, step: int) -> None:
        """Drop rows with ``step`` greater than ``step`` (rewrites the file atomically)."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
            fields = list(rows[0].keys()) if rows else (self.fields or [])
        keep = [r for r in rows if r.get("step") and int(r["step"]) <= step]
        if len(keep) == len(rows):
            return
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(keep)

    def write(self, row: dict[str, Any]) -> None:
        if self.fields is None:
            self.fields = ["step"] + [k for k in row if k != "step"]
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self.fields)
        values = [_fmt(row.get(k, "")) for k in self.fields]
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow(values)

    def read(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return v
