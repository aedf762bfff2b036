"""Cameras of real photographs: the input camera's intrinsics, a working size that follows the photo, user paths.

* :func:`working_size_for` — a working size with the photo's aspect (portrait included), sides multiples of 16
  and about the pixel count of the preset's working size (176 × 320 = 56,320 for ``tiny``);
* :func:`parse_intrinsics` — ``--intrinsics fx,fy,cx,cy`` or a file (JSON ``{"fx","fy","cx","cy"}`` /
  ``{"K": 3x3}``, or text holding 4 numbers or a 3×3 matrix);
* :func:`photo_camera` — the input camera ``Cameras []`` at the photo's own size from, in this order of precedence,
  ``--intrinsics``, ``--focal-px``, ``--fov``, a focal length in pixels read from EXIF
  (:mod:`lyra.inputs_exif`), else the default 50° vertical field of view of the procedural worlds;
* :func:`relative_path` / :func:`resample_path` — a user camera path expressed relative to its first camera and
  resampled to the teacher's ``T`` frames (so it can be *added* to GEN3C's six trajectories).

Conventions: OpenCV cameras, intrinsics in pixels of the image they are given for (pixel centres at ``i + 0.5``),
camera-to-world 4×4.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from torch import Tensor

from lyra.errors import ConfigError, FormatError
from lyra.geometry.cameras import Cameras, intrinsics_from_fov

__all__ = ["CameraSource", "intrinsics_matrix", "parse_intrinsics", "photo_camera", "relative_path",
           "resample_path", "working_size_for"]

#: Sides of a working size are multiples of this (the tokenizer's 8× and the denoiser's 2× patches).
SIZE_MULTIPLE = 16


def working_size_for(height: int, width: int, reference: tuple[int, int] = (176, 320),
                     multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """``(H, W)``: sides multiples of ``multiple`` with the aspect ``width / height`` of the photo and about the
    pixel count of ``reference`` (the preset's working size).

    Among the two nearest multiples of the ideal height (and the width that best follows the aspect for each),
    the pair with the smallest ``|log aspect error| + ½ |log area error|`` wins. A 1080 × 1920 portrait gives
    320 × 176 (H × W), a 4:3 photo 208 × 272, a 16:9 one 176 × 320.
    """
    if height <= 0 or width <= 0:
        raise ConfigError(f"the image has no pixels ({width}x{height})")
    area = reference[0] * reference[1]
    aspect = width / height
    ideal_h = math.sqrt(area / aspect) / multiple
    best: tuple[float, tuple[int, int]] | None = None
    for kh in {max(1, math.floor(ideal_h)), max(1, math.ceil(ideal_h))}:
        h = kh * multiple
        for kw in {max(1, math.floor(h * aspect / multiple)), max(1, math.ceil(h * aspect / multiple))}:
            w = kw * multiple
            score = abs(math.log((w / h) / aspect)) + 0.5 * abs(math.log(h * w / area))
            if best is None or score < best[0]:
                best = (score, (h, w))
    assert best is not None
    return best[1]


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> Tensor:
    """``K`` ``[3, 3]`` (float32) from focal lengths and principal point in pixels."""
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float32)


def _numbers(text: str, where: str) -> list[float]:
    try:
        return [float(t) for t in text.replace(",", " ").replace(";", " ").replace("[", " ").replace("]", " ").split()]
    except ValueError:
        raise ConfigError(f"{where}: expected numbers (fx,fy,cx,cy or a 3x3 matrix), got {text.strip()[:60]!r}") \
            from None


def _from_values(values: list[float], where: str) -> tuple[float, float, float, float]:
    if len(values) == 4:
        fx, fy, cx, cy = values
    elif len(values) == 9:
        k = values
        if abs(k[1]) > 1e-9 or abs(k[3]) > 1e-9 or k[6:] != [0.0, 0.0, 1.0]:
            raise ConfigError(f"{where}: a 3x3 K must be [[fx,0,cx],[0,fy,cy],[0,0,1]] (no skew)")
        fx, cx, fy, cy = k[0], k[2], k[4], k[5]
    elif len(values) == 16:  # a 4x4 intrinsic matrix (ScanNet's intrinsic_*.txt)
        return _from_values([*values[0:3], *values[4:7], *values[8:11]], where)
    else:
        raise ConfigError(f"{where}: expected 4 numbers fx,fy,cx,cy (or a 3x3 matrix), got {len(values)}")
    return fx, fy, cx, cy


def parse_intrinsics(spec: str) -> tuple[float, float, float, float]:
    """``(fx, fy, cx, cy)`` in pixels from ``fx,fy,cx,cy`` or a file.

    A file may be JSON (``{"fx": .., "fy": .., "cx": .., "cy": ..}``, ``{"K": [[..], [..], [..]]}`` or a bare
    3×3 list) or text holding 4 numbers, a 3×3 or a 4×4 intrinsic matrix. Values are checked by
    :func:`photo_camera` against the image size. ConfigError (one line) otherwise.
    """
    where = f"--intrinsics {spec}"
    p = Path(os.path.expanduser(spec))
    if p.is_file():
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{where}: cannot read the file ({e})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return _from_values(_numbers(text, where), where)
        if isinstance(data, dict):
            if "K" in data:
                data = data["K"]
            else:
                try:
                    return tuple(float(data[k]) for k in ("fx", "fy", "cx", "cy"))  # type: ignore[return-value]
                except (KeyError, TypeError, ValueError):
                    raise ConfigError(f"{where}: a JSON object needs fx, fy, cx, cy (pixels) or K") from None
        flat = torch.as_tensor(data, dtype=torch.float64).flatten().tolist() if isinstance(data, list) else None
        if flat is None:
            raise ConfigError(f"{where}: expected fx, fy, cx, cy or a 3x3 K")
        return _from_values(flat, where)
    if p.suffix.lower() in (".json", ".txt") or os.sep in spec:
        raise ConfigError(f"{where}: no such file")
    return _from_values(_numbers(spec, where), where)


CameraSource = str


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number of pixels, got {value!r}")
    return float(value)


def photo_camera(height: int, width: int, fov: float | None = None, focal_px: float | None = None,
                 intrinsics: tuple[float, float, float, float] | str | None = None,
                 exif_focal_px: float | None = None, exif_note: str | None = None,
                 default_fov: float = 50.0) -> tuple[Cameras, CameraSource]:
    """The input camera of a ``width × height`` photo (batch shape ``[]``, identity ``c2w``) and a note of where its
    intrinsics came from.

    Precedence: ``intrinsics`` (``(fx, fy, cx, cy)`` or a :func:`parse_intrinsics` spec), ``focal_px`` (square
    pixels, centred principal point), ``fov`` (vertical field of view in degrees), ``exif_focal_px`` (a focal
    length in pixels from the photo's EXIF), else ``default_fov``. At most one of the first three may be given.

    Raises:
        ConfigError: two of ``intrinsics``/``focal_px``/``fov``; a field of view outside (0, 180); a focal length
            that is not a positive number; a principal point outside the image.
    """
    given = [n for n, v in (("--intrinsics", intrinsics), ("--focal-px", focal_px), ("--fov", fov)) if v is not None]
    if len(given) > 1:
        raise ConfigError(f"give one of {', '.join(given)}, not several (each sets the input camera's intrinsics)")
    if intrinsics is not None:
        fx, fy, cx, cy = parse_intrinsics(intrinsics) if isinstance(intrinsics, str) else intrinsics
        _check_positive("--intrinsics fx", fx)
        _check_positive("--intrinsics fy", fy)
        if not (math.isfinite(cx) and math.isfinite(cy) and 0 < cx < width and 0 < cy < height):
            raise ConfigError(f"--intrinsics: the principal point ({cx:g}, {cy:g}) lies outside the {width}x{height} "
                              "image; give cx, cy in pixels of the photo as it is")
        K, source = intrinsics_matrix(fx, fy, cx, cy), "--intrinsics"
    elif focal_px is not None:
        f = _check_positive("--focal-px", focal_px)
        K, source = intrinsics_matrix(f, f, width / 2, height / 2), "--focal-px"
    elif fov is not None:
        if isinstance(fov, bool) or not isinstance(fov, (int, float)) or not 0.0 < fov < 180.0:
            raise ConfigError(f"--fov must lie in (0, 180) degrees (the vertical field of view), got {fov!r}")
        K, source = intrinsics_from_fov(float(fov), width, height), "--fov"
    elif exif_focal_px is not None:
        f = _check_positive("the EXIF focal length", exif_focal_px)
        K, source = intrinsics_matrix(f, f, width / 2, height / 2), exif_note or "EXIF"
    else:
        K, source = intrinsics_from_fov(default_fov, width, height), f"default {default_fov:g}° vertical field of view"
    return Cameras(K, torch.eye(4), width, height), source


# ------------------------------------------------------------------------------------------------ paths
def relative_path(path: Cameras, input_c2w: Tensor | None = None) -> Cameras:
    """A camera path ``[N]`` re-expressed so that its first camera sits at ``input_c2w`` (default identity):
    ``c2w_i ← input_c2w · c2w_0⁻¹ · c2w_i`` (a rigid motion; intrinsics and units unchanged)."""
    flat = path.flatten()
    base = torch.linalg.inv(flat.c2w[0].double())
    rel = base @ flat.c2w.double()
    if input_c2w is not None:
        rel = input_c2w.double() @ rel
    return Cameras(flat.K.clone(), rel.float(), flat.width, flat.height)


def _quat_from_matrix(R: Tensor) -> Tensor:
    """Unit quaternion ``[4]`` (w, x, y, z) of a rotation matrix ``[3, 3]`` (float64)."""
    m = R.double()
    t = float(m.trace())
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(torch.argmax(torch.diagonal(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = math.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k, k], 1e-12)) * 2
        q = [0.0] * 4
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    q = torch.tensor([float(v) for v in q], dtype=torch.float64)
    return q / q.norm()


def _matrix_from_quat(q: Tensor) -> Tensor:
    w, x, y, z = (q / q.norm()).tolist()
    return torch.tensor([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]], dtype=torch.float64)


def _slerp(q0: Tensor, q1: Tensor, t: float) -> Tensor:
    d = float(q0 @ q1)
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:
        q = q0 + t * (q1 - q0)
        return q / q.norm()
    theta = math.acos(min(1.0, d))
    return (math.sin((1 - t) * theta) * q0 + math.sin(t * theta) * q1) / math.sin(theta)


def resample_path(path: Cameras, frames: int) -> Cameras:
    """A camera path ``[N]`` resampled to ``frames`` cameras evenly spaced in its frame index (first and last kept):
    centres and intrinsics interpolated linearly, rotations by slerp. ``N == frames`` returns the path as it is."""
    flat = path.flatten()
    n = flat.shape[0]
    if frames < 1:
        raise ConfigError(f"a path needs at least one frame, got {frames}")
    if n == frames:
        return flat
    if n == 1:
        return Cameras(flat.K.expand(frames, 3, 3).clone(), flat.c2w.expand(frames, 4, 4).clone(), flat.width,
                       flat.height)
    quats = [_quat_from_matrix(flat.c2w[i, :3, :3]) for i in range(n)]
    Ks, c2ws = [], []
    for s in torch.linspace(0, n - 1, frames, dtype=torch.float64).tolist():
        i = min(int(math.floor(s)), n - 2)
        t = s - i
        c2w = torch.eye(4, dtype=torch.float64)
        c2w[:3, :3] = _matrix_from_quat(_slerp(quats[i], quats[i + 1], t))
        c2w[:3, 3] = (1 - t) * flat.c2w[i, :3, 3].double() + t * flat.c2w[i + 1, :3, 3].double()
        Ks.append((1 - t) * flat.K[i].double() + t * flat.K[i + 1].double())
        c2ws.append(c2w)
    return Cameras(torch.stack(Ks).float(), torch.stack(c2ws).float(), flat.width, flat.height)


def check_rigid(c2w: Tensor, where: str) -> None:
    """FormatError unless every ``c2w`` ``[..., 4, 4]`` is finite with a rotation block (orthonormal, det +1)."""
    if not bool(torch.isfinite(c2w).all()):
        raise FormatError(f"{where}: non-finite camera poses")
    R = c2w[..., :3, :3].double()
    eye = torch.eye(3, dtype=torch.float64)
    err = float((R @ R.transpose(-1, -2) - eye).abs().max()) if R.numel() else 0.0
    if err > 1e-3 or bool((torch.linalg.det(R) < 0).any()):
        raise FormatError(f"{where}: a pose's rotation is not a rotation matrix (orthonormality error {err:.2g} or "
                          "det < 0); give rigid camera poses")
