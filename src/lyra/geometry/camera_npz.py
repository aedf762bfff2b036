"""Lyra-2 camera paths: ``trajectory.npz`` with ``w2c`` ``[N, 4, 4]`` and ``intrinsics`` ``[N, 3, 3]``.

The layout read by Lyra-2's custom-trajectory inference (``lyra2_custom_traj_inference.py``): ``w2c`` are
world-to-camera matrices (OpenCV axes: x right, y down, z forward; ``[N, 3, 4]`` is accepted too), ``intrinsics``
are pixel intrinsics ``[N, 3, 3]`` (``[N, 4]`` as ``fx, fy, cx, cy`` is accepted too), and the optional scalars
``image_height`` / ``image_width`` give the image size the intrinsics refer to. Without them the size is taken as
twice the first camera's principal point (a centred principal point), rounded.

Read with ``numpy.load(allow_pickle=False)``: a file holding Python objects is refused.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np
import torch

from lyra.errors import FormatError
from lyra.fileio import check_input_file
from lyra.geometry.cameras import Cameras
from lyra.geometry.intrinsics import check_rigid

__all__ = ["is_npz", "load_npz_path"]


def is_npz(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``.npz`` (by extension or its zip signature)."""
    if str(path).lower().endswith(".npz"):
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def load_npz_path(path: str | os.PathLike) -> Cameras:
    """A Lyra-2 ``trajectory.npz`` → ``Cameras [N]`` (OpenCV camera-to-world, pixel intrinsics).

    Raises:
        FormatError: not a readable ``.npz``; ``w2c`` or ``intrinsics`` missing, of the wrong shape, non-finite or
            not rigid; a bad image size. All one line.
    """
    p = check_input_file(path)
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise FormatError(f"{p}: not a readable .npz camera path ({str(e).splitlines()[0] if str(e) else e!r})") \
            from None
    missing = [k for k in ("w2c", "intrinsics") if k not in arrays]
    if missing:
        raise FormatError(f"{p}: a Lyra-2 trajectory.npz needs the arrays w2c [N,4,4] and intrinsics [N,3,3]; "
                          f"missing {', '.join(missing)} (found {', '.join(sorted(arrays)) or 'none'})")
    try:
        w2c = torch.from_numpy(arrays["w2c"].astype(np.float64))
        intr = torch.from_numpy(arrays["intrinsics"].astype(np.float64))
    except (TypeError, ValueError):
        raise FormatError(f"{p}: w2c and intrinsics must be numeric arrays") from None
    if w2c.dim() == 2:
        w2c = w2c[None]
    if intr.dim() in (1, 2) and intr.shape[-1] in (3, 4) and (intr.dim() == 1 or intr.shape[-2] != 3):
        intr = intr.reshape(-1, intr.shape[-1])
    if w2c.dim() != 3 or w2c.shape[1:] not in ((4, 4), (3, 4)) or w2c.shape[0] == 0:
        raise FormatError(f"{p}: w2c must be [N, 4, 4] (or [N, 3, 4]), got {tuple(w2c.shape)}")
    if w2c.shape[1] == 3:
        w2c = torch.cat([w2c, torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=w2c.dtype).expand(len(w2c), 1, 4)], 1)
    n = w2c.shape[0]
    if intr.dim() == 2 and intr.shape[1] == 4:
        fx, fy, cx, cy = intr.unbind(-1)
        K = torch.zeros(len(intr), 3, 3, dtype=torch.float64)
        K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = fx, fy, cx, cy, 1.0
        intr = K
    if intr.dim() == 2 and intr.shape == (3, 3):
        intr = intr[None]
    if intr.dim() != 3 or intr.shape[1:] != (3, 3):
        raise FormatError(f"{p}: intrinsics must be [N, 3, 3] (or [N, 4] fx,fy,cx,cy), got {tuple(intr.shape)}")
    if intr.shape[0] == 1 and n > 1:
        intr = intr.expand(n, 3, 3)
    if intr.shape[0] != n:
        raise FormatError(f"{p}: {n} poses but {intr.shape[0]} intrinsics; give one per pose")
    if not bool(torch.isfinite(intr).all()) or bool((intr[:, 0, 0] <= 0).any()) or bool((intr[:, 1, 1] <= 0).any()):
        raise FormatError(f"{p}: intrinsics must be finite with positive focal lengths (pixels)")
    if not bool(torch.isfinite(w2c).all()):
        raise FormatError(f"{p}: non-finite camera poses")
    c2w = torch.linalg.inv(w2c)
    check_rigid(c2w, str(p))
    if "image_height" in arrays and "image_width" in arrays:
        try:
            h, w = int(arrays["image_height"].reshape(-1)[0]), int(arrays["image_width"].reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            raise FormatError(f"{p}: image_height / image_width must be integers") from None
    else:
        w, h = round(2 * float(intr[0, 0, 2])), round(2 * float(intr[0, 1, 2]))
    if h <= 0 or w <= 0:
        raise FormatError(f"{p}: the image size {w}x{h} is not positive (give image_height and image_width)")
    return Cameras(intr.float(), c2w.float(), w, h)
