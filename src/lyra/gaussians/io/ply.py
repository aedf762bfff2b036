"""PLY files in the INRIA 3D Gaussian Splatting layout (the ``point_cloud.ply`` of graphdeco-inria).

One ``vertex`` element, every property a little-endian float32, in this order::

    x y z  nx ny nz  f_dc_0 f_dc_1 f_dc_2  f_rest_0 .. f_rest_{3K-1}  opacity  scale_0..2  rot_0..3

* ``f_dc_*``: SH degree-0 coefficients, colour = 0.5 + SH_C0 · f_dc;
* ``f_rest_*``: the K = (d+1)^2 - 1 higher SH coefficients, **channel-major** as INRIA writes them (all
  K coefficients of R, then G, then B), i.e. ``f_rest[c*K + k] = sh_rest[k, c]``;
* ``opacity``: logit of the opacity; ``scale_*``: natural log of the scales; ``rot_*``: quaternion wxyz
  (not necessarily normalised in files from other tools; normalised on reading);
* ``nx ny nz``: zero normals, written for viewers that expect them.

Coordinates are stored as they are (INRIA files live in the COLMAP/OpenCV world, like lyra's Gaussians).

Reading also accepts ASCII and big-endian PLYs, any float or integer property types, files without
normals or with extra properties, and SH degrees 0-3 (any degree whose f_rest count is 3·((d+1)^2-1)).
Precision of a round trip: exact up to the float32 rounding of the stored log/logit values (means,
quaternions and f_rest are bit-exact; scales and opacities within a few ulp).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement, PlyParseError

from lyra.errors import FormatError
from lyra.gaussians.gaussians import SH_C0, Gaussians, sh_degree_from_rest

REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
            "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
#: Opacities are clamped to [EPS, 1 - EPS] before the logit so that 0 and 1 stay finite.
OPACITY_EPS = 2.0 ** -24


#: Largest log-scale read: exp(88.7) is the largest float32.
MAX_LOG_SCALE = 88.0


def property_names(sh_degree: int) -> list[str]:
    """The vertex properties lyra writes for SH degree ``sh_degree``, in file order."""
    k = (sh_degree + 1) ** 2 - 1
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(3 * k)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def write_ply(g: Gaussians, path: str | Path, *, ascii: bool = False) -> None:
    """Write Gaussians (validated, on the CPU) as an INRIA 3DGS PLY (binary little endian; ASCII on request)."""
    n = len(g)
    k = 0 if g.sh_rest is None else int(g.sh_rest.shape[1])
    names = property_names(g.sh_degree)
    table = np.zeros((n, len(names)), dtype=np.float32)
    table[:, 0:3] = g.means.numpy()
    table[:, 6:9] = (g.colors.numpy().astype(np.float64) - 0.5) / SH_C0
    if k:
        table[:, 9:9 + 3 * k] = g.sh_rest.numpy().transpose(0, 2, 1).reshape(n, 3 * k)
    o = np.clip(g.opacities.numpy().astype(np.float64), OPACITY_EPS, 1.0 - OPACITY_EPS)
    c = 9 + 3 * k
    table[:, c] = np.log(o) - np.log1p(-o)
    table[:, c + 1:c + 4] = np.log(g.scales.numpy().astype(np.float64))
    table[:, c + 4:c + 8] = g.quats.numpy()
    vertices = table.view(np.dtype([(name, "<f4") for name in names])).reshape(n)
    PlyData([PlyElement.describe(vertices, "vertex")], text=ascii, byte_order="<").write(str(path))


def _load(path: Path) -> PlyData:
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:3] != b"ply" or head[3:4] not in (b"\n", b"\r"):
        raise FormatError(f"{path}: not a PLY file (it starts with {head!r}, a PLY starts with 'ply')")
    _check_declared_sizes(path)
    try:
        return PlyData.read(str(path))
    except PlyParseError as e:
        if "end-of-file" in str(e):
            raise FormatError(f"{path}: the PLY file is truncated ({e}); re-export or re-download it") from e
        raise FormatError(f"{path}: invalid PLY file ({e})") from e
    except (ValueError, TypeError) as e:  # undecodable header bytes, unknown types
        raise FormatError(f"{path}: invalid PLY header ({e})") from e


def _check_declared_sizes(path: Path) -> None:
    """Refuse element counts the file cannot hold, or above :data:`lyra.limits.MAX_GAUSSIANS`, before plyfile
    allocates arrays for them (a 1 KB header can claim 4 billion vertices)."""
    from plyfile import PlyListProperty

    from lyra.limits import check_gaussian_count

    try:
        with open(path, "rb") as f:
            header = PlyData._parse_header(f)
            body = path.stat().st_size - f.tell()
    except PlyParseError as e:
        raise FormatError(f"{path}: invalid PLY header ({e})") from e
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: invalid PLY header ({e})") from e
    for el in header.elements:
        props = el.properties
        if header.text:  # at least one character and one separator per value
            each = 2 * max(1, len(props))
        elif any(isinstance(prop, PlyListProperty) for prop in props):
            each = max(1, len(props))  # a list holds at least its length byte
        else:
            each = max(1, el.dtype().itemsize)
        if el.name == "vertex":
            check_gaussian_count(path, el.count, each, body, "element 'vertex' of the header")
        elif el.count * each > body:
            raise FormatError(f"{path}: the header's element '{el.name}' claims {el.count:,} rows, more than the "
                              f"file holds (truncated or corrupt)")


def _columns(path: Path, data: np.ndarray, names: list[str]) -> np.ndarray:
    """Selected properties of a structured vertex array as a float32 matrix [N, len(names)]."""
    dtype = data.dtype
    if all(dtype[name] == np.dtype("<f4") for name in dtype.names) and dtype.itemsize == 4 * len(dtype.names):
        # Fast path (every INRIA file): view the records as a float matrix and gather the columns.
        table = np.asarray(data).view("<f4").reshape(len(data), len(dtype.names))
        index = [dtype.names.index(name) for name in names]
        return table[:, index]
    out = np.empty((len(data), len(names)), dtype=np.float32)
    for i, name in enumerate(names):
        out[:, i] = data[name]
    return out


def read_ply(path: str | Path) -> Gaussians:
    """Read a 3DGS PLY (INRIA layout) into Gaussians; see the module docstring for what is accepted."""
    path = Path(path)
    ply = _load(path)
    if "vertex" not in [el.name for el in ply.elements]:
        raise FormatError(f"{path}: the PLY file has no 'vertex' element (found: "
                          f"{', '.join(el.name for el in ply.elements) or 'none'})")
    data = ply["vertex"].data
    present = set(data.dtype.names or ())
    if "packed_position" in present or "chunk" in [el.name for el in ply.elements]:
        raise FormatError(f"{path}: this is a compressed PLY (SuperSplat/PlayCanvas), not the INRIA 3DGS "
                          "layout; decompress it to a plain 3DGS PLY first")
    missing = [name for name in REQUIRED if name not in present]
    if missing:
        raise FormatError(f"{path}: not a 3D Gaussian splat PLY: the vertex element lacks "
                          f"{', '.join(missing)} (found: {', '.join(sorted(present)[:20])})")
    rest = sorted((name for name in present if name.startswith("f_rest_")),
                  key=lambda s: int(s[7:]) if re.fullmatch(r"f_rest_\d+", s) else -1)
    if rest != [f"f_rest_{i}" for i in range(len(rest))] or len(rest) % 3:
        raise FormatError(f"{path}: the f_rest_* properties must be f_rest_0 .. f_rest_{{3K-1}} "
                          f"(found {len(rest)}: {', '.join(rest[:6])}{' ...' if len(rest) > 6 else ''})")
    k = len(rest) // 3
    sh_degree_from_rest(k)  # raises FormatError when K is not (d+1)^2 - 1
    names = list(REQUIRED) + rest
    table = _columns(path, data, names)
    bad = ~np.isfinite(table)
    if bad.any():
        cols = np.flatnonzero(bad.any(0))
        rows = np.flatnonzero(bad.any(1))
        raise FormatError(f"{path}: non-finite values (NaN/inf) in properties "
                          f"{', '.join(names[c] for c in cols)} of {len(rows)} vertex(es), first at vertex "
                          f"{int(rows[0])}; the file is corrupt or came from a diverged optimisation")
    n = len(table)
    means = table[:, 0:3].copy()
    colors = (table[:, 3:6].astype(np.float64) * SH_C0 + 0.5).astype(np.float32)
    log_scales = table[:, 7:10].astype(np.float64)
    big = log_scales > MAX_LOG_SCALE
    if big.any():
        rows = np.flatnonzero(big.any(1))
        raise FormatError(f"{path}: scale_* (natural log of the scale) is above {MAX_LOG_SCALE:g} in {len(rows)} "
                          f"vertex(es), first {float(log_scales[rows[0]].max()):g} at vertex {int(rows[0])}: "
                          "the scale overflows float32 (a corrupt file, or linear scales stored as logs)")
    opacities = (0.5 + 0.5 * np.tanh(0.5 * table[:, 6].astype(np.float64))).astype(np.float32)  # sigmoid
    scales = np.exp(log_scales).astype(np.float32)
    quats = table[:, 10:14].copy()
    norms = np.linalg.norm(quats.astype(np.float64), axis=1)
    if (norms == 0).any():
        raise FormatError(f"{path}: rot_0..rot_3 are all zero in {int((norms == 0).sum())} vertex(es), "
                          f"first at vertex {int(np.flatnonzero(norms == 0)[0])}")
    off = np.abs(norms - 1.0) > 1e-6  # keep float32-unit quaternions bit-exact
    if off.any():
        quats[off] = (quats[off].astype(np.float64) / norms[off, None]).astype(np.float32)
    sh_rest = None
    if k:
        sh_rest = torch.from_numpy(np.ascontiguousarray(table[:, 14:].reshape(n, 3, k).transpose(0, 2, 1)))
    t = torch.from_numpy
    return Gaussians(t(means), t(quats), t(scales), t(opacities), t(colors), sh_rest)
