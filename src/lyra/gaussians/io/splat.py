"""The ``.splat`` format of antimatter15's WebGL viewer: N records of 32 bytes, nothing else.

Record layout (little endian)::

    position  3 × float32   x, y, z (stored as they are, like PLY: no coordinate conversion)
    scale     3 × float32   linear standard deviations (not log)
    color     4 × uint8     R, G, B = round(clip(colour, 0, 1) · 255), A = round(opacity · 255)
    rotation  4 × uint8     quaternion w, x, y, z of the unit quaternion: round(q · 128 + 128) clipped to [0, 255]

Decoding: colour = byte / 255, opacity = byte / 255, q = normalise((byte - 128) / 128). The format has no
spherical harmonics (higher SH bands are dropped on writing, with a warning) and no header: a file's size
must be a multiple of 32. antimatter15's converter truncates instead of rounding; its decoder is the same,
so rounding here only halves the error.

Precision of a round trip: positions and scales exact (float32); colour and opacity ±0.5/255 (colours
outside [0, 1] are clipped); rotation: each quaternion component ±1/256 before renormalising (±1/128 for a
component above 127.5/128, which clips), so the unit quaternion moves by at most 2·√7/256 ≈ 0.021.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from lyra.errors import FormatError
from lyra.gaussians.gaussians import Gaussians

RECORD = np.dtype([("position", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)), ("rot", "u1", (4,))])
assert RECORD.itemsize == 32


def write_splat(g: Gaussians, path: str | Path) -> None:
    """Write Gaussians (validated, on the CPU) as a ``.splat`` file, in their order."""
    if len(g) == 0:
        raise FormatError("cannot write 0 Gaussians to .splat: an empty .splat file is not readable")
    if g.sh_degree > 0:
        warnings.warn(f".splat stores no spherical harmonics: SH degree {g.sh_degree} bands are dropped",
                      UserWarning, stacklevel=3)
    rec = np.empty(len(g), dtype=RECORD)
    rec["position"] = g.means.numpy()
    rec["scale"] = g.scales.numpy()
    rgb = np.clip(g.colors.numpy().astype(np.float64), 0.0, 1.0) * 255.0
    rec["rgba"][:, :3] = np.floor(rgb + 0.5).astype(np.uint8)
    rec["rgba"][:, 3] = np.floor(g.opacities.numpy().astype(np.float64) * 255.0 + 0.5).astype(np.uint8)
    q = g.quats.numpy().astype(np.float64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    rec["rot"] = np.clip(np.floor(q * 128.0 + 128.5), 0, 255).astype(np.uint8)
    rec.tofile(str(path))


def read_splat(path: str | Path) -> Gaussians:
    """Read a ``.splat`` file (see the module docstring)."""
    path = Path(path)
    size = path.stat().st_size
    if size % RECORD.itemsize:
        raise FormatError(f"{path}: {size} bytes is not a multiple of 32 (a .splat file is a sequence of "
                          f"32-byte records); the file is truncated or not a .splat file")
    from lyra.limits import check_gaussian_count

    check_gaussian_count(path, size // RECORD.itemsize, RECORD.itemsize, size, "the file size")
    rec = np.fromfile(str(path), dtype=RECORD)
    q = (rec["rot"].astype(np.float64) - 128.0) / 128.0
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    zero = norms[:, 0] == 0
    if zero.any():
        raise FormatError(f"{path}: {int(zero.sum())} record(s) have an all-zero rotation (first at record "
                          f"{int(np.flatnonzero(zero)[0])}); not a valid .splat file")
    rgba = rec["rgba"].astype(np.float32) / np.float32(255.0)
    t = torch.from_numpy
    return Gaussians(
        means=t(np.ascontiguousarray(rec["position"])),
        quats=t((q / norms).astype(np.float32)),
        scales=t(np.ascontiguousarray(rec["scale"])),
        opacities=t(np.ascontiguousarray(rgba[:, 3])),
        colors=t(np.ascontiguousarray(rgba[:, :3])),
    )
