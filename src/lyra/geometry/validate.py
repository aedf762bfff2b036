"""Checks that camera matrices read from files describe real pinhole cameras (OpenCV convention).

A camera-to-world matrix must be finite, have ``[0, 0, 0, 1]`` as its last row and a proper rotation block
(orthonormal within :data:`ROTATION_TOL`, determinant +1: no scale, shear or mirror). Intrinsics ``K`` must be
finite, upper-triangular with ``K[2] = [0, 0, 1]`` and positive focal lengths. Image sides are at most
:data:`MAX_SIDE` pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lyra.errors import FormatError

#: Largest image side of a camera (a float RGB frame of 8192² is 0.8 GB).
MAX_SIDE = 8192
#: Largest ``|RᵀR − I|`` entry and ``|det R − 1|`` accepted (float32 files round-trip at about 1e-7).
ROTATION_TOL = 1e-3


def check_camera_matrices(K: Tensor, c2w: Tensor, width: int, height: int, where: str) -> None:
    """Raise :class:`FormatError` naming the first bad camera of ``K [N, 3, 3]``, ``c2w [N, 4, 4]``.

    ``where`` prefixes the message (e.g. the file name).
    """
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise FormatError(f"{where}: image size {width}x{height} must be positive and at most {MAX_SIDE} a side")
    K = K.reshape(-1, 3, 3).double()
    c2w = c2w.reshape(-1, 4, 4).double()

    def first(bad: Tensor) -> int:
        return int(torch.nonzero(bad)[0, 0])

    bad = ~torch.isfinite(c2w).flatten(1).all(1) | ~torch.isfinite(K).flatten(1).all(1)
    if bad.any():
        raise FormatError(f"{where}: camera {first(bad)} has non-finite values")
    bottom = (c2w[:, 3] - torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=c2w.dtype)).abs().amax(1) > 1e-6
    if bottom.any():
        raise FormatError(f"{where}: camera {first(bottom)}: the c2w matrix's last row must be 0 0 0 1")
    R = c2w[:, :3, :3]
    ortho = (R.transpose(1, 2) @ R - torch.eye(3, dtype=R.dtype)).abs().flatten(1).amax(1)
    det = torch.linalg.det(R)
    bad = ortho > ROTATION_TOL
    if bad.any():
        i = first(bad)
        kind = "singular" if abs(float(det[i])) < 1e-6 else "not a rotation (scaled or sheared)"
        raise FormatError(f"{where}: camera {i}: the c2w rotation block is {kind} (|RᵀR − I| = "
                          f"{float(ortho[i]):.3g}); give an orthonormal rotation")
    bad = (det - 1.0).abs() > ROTATION_TOL
    if bad.any():
        raise FormatError(f"{where}: camera {first(bad)}: the c2w rotation block has determinant "
                          f"{float(det[first(bad)]):.3g} (a mirror); give a proper rotation (det +1)")
    fx, fy = K[:, 0, 0], K[:, 1, 1]
    bad = (fx <= 0) | (fy <= 0)
    if bad.any():
        i = first(bad)
        raise FormatError(f"{where}: camera {i}: focal lengths must be positive pixels, got fx={float(fx[i]):g}, "
                          f"fy={float(fy[i]):g}")
    lower = torch.stack([K[:, 1, 0], K[:, 2, 0], K[:, 2, 1], K[:, 2, 2] - 1.0], 1).abs().amax(1) > 1e-6
    if lower.any():
        raise FormatError(f"{where}: camera {first(lower)}: K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]]")
