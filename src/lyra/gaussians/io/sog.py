"""PlayCanvas SOG ("Spatially Ordered Gaussians"), bundled: one ``.sog`` ZIP holding ``meta.json`` and lossless
WebP images.

lyra writes **SOG version 2**, the layout PlayCanvas documents and every PlayCanvas tool reads (the
``@playcanvas/splat-transform`` 2.7 release that CI installs reads version 2 and refuses other versions; the
PlayCanvas manual names a version 3 too, which lyra does not write). The reader accepts version 2.

Layout (all images W × H RGBA, W = 4·⌈√N / 4⌉, H = 4·⌈N / W / 4⌉, Gaussian ``i`` at pixel ``(i mod W, i div W)``):

* ``means_l.webp`` / ``means_u.webp`` — low / high byte of a 16-bit quantisation of ``sign(x)·ln(|x| + 1)`` per
  axis between ``meta.means.mins`` and ``maxs``;
* ``quats.webp`` — the quaternion (wxyz, sign chosen so the largest component is positive) as its three other
  components ``· √2`` mapped to bytes, and ``252 + index of the largest`` in alpha;
* ``scales.webp`` — per axis an index into the 256-entry ``meta.scales.codebook`` of **log** scales;
* ``sh0.webp`` — per channel an index into the 256-entry ``meta.sh0.codebook`` of DC coefficients ``f_dc``
  (colour = 0.5 + 0.282095·f_dc), opacity (post-sigmoid) · 255 in alpha;
* ``shN_centroids.webp`` / ``shN_labels.webp`` (SH degree ≥ 1) — a palette of ``meta.shN.count`` SH vectors found
  by k-means (each coefficient's RGB an index into ``meta.shN.codebook``; 64 palette entries per row, one pixel per
  coefficient) and each Gaussian's 16-bit palette label in R (low byte) and G (high byte).

The codebooks come from a 1-D k-means over all values of a field (256 centroids). Gaussians are stored in Morton
(Z-curve) order of their quantised positions, so reading returns them permuted: :func:`sog_order` gives the
permutation. Coordinates are those of the INRIA PLY (lyra's OpenCV world), as the SOG specification says.

Round-trip precision (documented in docs/formats.md, tested in tests/gaussians/test_io_export_formats.py): means
within ``(|x| + 1)·(max − min)/65535`` of the log range per axis (≈1e-4 relative for a scene 10 units across);
rotations within about 0.5°; opacities within 0.5/255; log scales and DC colours within the codebook's spacing
(each value maps to its nearest of 256 centroids); SH palette entries are k-means centroids (exact when there are
no more Gaussians than palette entries, up to the codebook).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import torch

from lyra.errors import FormatError
from lyra.gaussians.gaussians import SH_C0, Gaussians

SOG_VERSION = 2
#: Upper bound on the SH palette size that the writer picks (the format allows up to 65536 entries).
DEFAULT_SH_PALETTE = 4096
_SQRT2 = math.sqrt(2.0)
_SH_COEFFS = {1: 3, 2: 8, 3: 15}


# ------------------------------------------------------------------------------------------------- helpers
def _log_transform(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _inv_log_transform(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.expm1(np.abs(v))


def _morton_keys(means: np.ndarray) -> np.ndarray:
    """30-bit Morton code of each centre quantised to 1024 cells per axis of the bounding box."""
    lo, hi = means.min(0), means.max(0)
    q = ((means - lo) / np.where(hi > lo, hi - lo, 1.0) * 1023).astype(np.int64).clip(0, 1023)
    code = np.zeros(len(means), dtype=np.int64)
    for bit in range(10):
        for axis in range(3):
            code |= ((q[:, axis] >> bit) & 1) << (3 * bit + axis)
    return code


def sog_order(g: Gaussians) -> np.ndarray:
    """The permutation ``[N]`` the writer stores Gaussians in (Morton order; stable): file Gaussian ``i`` is
    ``g[order[i]]``."""
    return np.argsort(_morton_keys(g.means.numpy().astype(np.float64)), kind="stable")


def quantize_1d(values: np.ndarray, k: int = 256, iterations: int = 16, sample: int = 200_000,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1-D k-means: ``(codebook [k] float32 ascending, labels uint8/uint16 like values)``.

    Centroids start at quantiles of (a sample of) the values and follow Lloyd's iterations; each value then takes
    its nearest centroid. Fewer distinct values than ``k``: the codebook holds them exactly (padded by repeats).
    """
    flat = values.reshape(-1).astype(np.float64)
    uniq = np.unique(flat)
    if len(uniq) <= k:
        code = np.concatenate([uniq, np.full(k - len(uniq), uniq[-1] if len(uniq) else 0.0)])
    else:
        rng = np.random.default_rng(seed)
        data = flat if len(flat) <= sample else rng.choice(flat, sample, replace=False)
        data = np.sort(data)
        code = np.quantile(data, (np.arange(k) + 0.5) / k)
        for _ in range(iterations):
            edges = (code[1:] + code[:-1]) / 2
            lab = np.searchsorted(edges, data)
            sums = np.bincount(lab, weights=data, minlength=k)
            counts = np.bincount(lab, minlength=k)
            code = np.where(counts > 0, sums / np.maximum(counts, 1), code)
            code = np.sort(code)
    code32 = code.astype(np.float32)
    edges = (code32[1:].astype(np.float64) + code32[:-1].astype(np.float64)) / 2
    labels = np.searchsorted(edges, flat).reshape(values.shape)
    return code32, labels.astype(np.uint8 if k <= 256 else np.uint16)


def _kmeans(x: np.ndarray, k: int, iterations: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k-means of rows ``x`` ``[N, D]`` → ``(centroids [k, D], labels [N])`` (k ≥ N: every row its own centroid)."""
    n = len(x)
    if k >= n:
        return x.astype(np.float32).copy(), np.arange(n)
    t = torch.from_numpy(x.astype(np.float32))
    gen = torch.Generator().manual_seed(seed)
    cent = t[torch.randperm(n, generator=gen)[:k]].clone()
    labels = torch.zeros(n, dtype=torch.long)
    for _ in range(max(iterations, 1)):
        labels = torch.cat([torch.cdist(t[i:i + 8192], cent).argmin(1) for i in range(0, n, 8192)])
        sums = torch.zeros_like(cent).index_add_(0, labels, t)
        counts = torch.bincount(labels, minlength=k).float()
        empty = counts == 0
        cent = torch.where(empty[:, None], cent, sums / counts.clamp_min(1)[:, None])
    labels = torch.cat([torch.cdist(t[i:i + 8192], cent).argmin(1) for i in range(0, n, 8192)])
    return cent.numpy(), labels.numpy()


def _webp(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    # exact=True keeps the RGB of transparent pixels (alpha 0 is a valid opacity byte)
    Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), "RGBA").save(
        buf, format="WEBP", lossless=True, quality=100, method=4, exact=True)
    return buf.getvalue()


def _unwebp(data: bytes, name: str, path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "WEBP":
                raise FormatError(f"{path}: {name} is {im.format}, not WebP")
            return np.asarray(im.convert("RGBA"))
    except (UnidentifiedImageError, OSError) as e:
        raise FormatError(f"{path}: {name} is not a readable image ({e})") from None


# ------------------------------------------------------------------------------------------------- writing
def write_sog(g: Gaussians, path: str | Path, *, sh_palette: int = DEFAULT_SH_PALETTE, sh_iterations: int = 10
              ) -> None:
    """Write Gaussians (validated, on the CPU) as a bundled SOG version 2 file (see module doc).

    ``sh_palette``: most SH palette entries (PlayCanvas' rule ``min(64, 2^⌊log2(N/1024)⌋)·1024`` capped by this);
    ``sh_iterations``: k-means iterations for the palette.
    """
    n = len(g)
    if n == 0:
        raise FormatError("a .sog file needs at least one Gaussian")
    if not 1 <= int(sh_palette) <= 65536:
        raise FormatError(f"sog_sh_palette must be in 1..65536, got {sh_palette}")
    order = sog_order(g)
    means = g.means.numpy().astype(np.float64)[order]
    quats = g.quats.numpy().astype(np.float64)[order]
    log_scales = np.log(g.scales.numpy().astype(np.float64))[order]
    dc = ((g.colors.numpy().astype(np.float64) - 0.5) / SH_C0)[order]
    opac = g.opacities.numpy().astype(np.float64)[order]
    width = int(math.ceil(math.sqrt(n) / 4) * 4)
    height = int(math.ceil(n / width / 4) * 4)

    def texture(cols: np.ndarray, alpha: np.ndarray | int = 255) -> np.ndarray:
        img = np.zeros((width * height, 4), dtype=np.uint8)
        img[:n, :cols.shape[1]] = cols
        img[:n, 3] = alpha
        return img.reshape(height, width, 4)

    files: dict[str, bytes] = {}
    # means: 16 bits of the log-transformed coordinates
    lm = _log_transform(means)
    mins, maxs = lm.min(0), lm.max(0)
    span = np.where(maxs > mins, maxs - mins, 1.0)
    q16 = np.round((lm - mins) / span * 65535).clip(0, 65535).astype(np.uint16)
    files["means_l.webp"] = _webp(texture((q16 & 0xFF).astype(np.uint8)))
    files["means_u.webp"] = _webp(texture((q16 >> 8).astype(np.uint8)))
    # quaternions: largest component dropped (made positive), the others · √2 in bytes, tag 252 + its index
    q = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    big = np.abs(q).argmax(1)
    q = q * np.where(q[np.arange(n), big] < 0, -1.0, 1.0)[:, None]
    keep = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[big]
    rest = np.take_along_axis(q, keep, 1) * _SQRT2
    qbytes = np.round(255 * (rest * 0.5 + 0.5)).clip(0, 255).astype(np.uint8)
    files["quats.webp"] = _webp(texture(qbytes, (252 + big).astype(np.uint8)))
    # scales and DC colours: 256-entry codebooks
    s_code, s_lab = quantize_1d(log_scales)
    files["scales.webp"] = _webp(texture(s_lab))
    c_code, c_lab = quantize_1d(dc)
    alpha = np.round(np.clip(opac, 0, 1) * 255).astype(np.uint8)
    files["sh0.webp"] = _webp(texture(c_lab, alpha))
    meta: dict = {
        "version": SOG_VERSION,
        "asset": {"generator": "lyra"},
        "count": n,
        "means": {"mins": [float(v) for v in mins], "maxs": [float(v) for v in maxs],
                  "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": [float(v) for v in s_code], "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": [float(v) for v in c_code], "files": ["sh0.webp"]},
    }
    degree = g.sh_degree
    if degree:
        k = _SH_COEFFS[degree]
        sh = g.sh_rest.numpy().astype(np.float64)[order][:, :k, :]  # [n, k, 3]
        # the row layout of the palette: channel-major like the PLY's f_rest (R of all k, then G, then B)
        rows = sh.transpose(0, 2, 1).reshape(n, 3 * k)
        palette = int(min(64, 2 ** math.floor(math.log2(max(n, 1) / 1024))) * 1024) if n >= 1024 else n
        palette = max(1, min(palette, int(sh_palette), n))
        cent, labels = _kmeans(rows, palette, sh_iterations)
        count = len(cent)
        n_code, n_lab = quantize_1d(cent)
        n_lab = n_lab.reshape(count, 3, k)  # [count, channel, coeff]
        cw, ch = 64 * k, int(math.ceil(count / 64))
        cimg = np.zeros((ch * 64 * k, 4), dtype=np.uint8)
        pix = n_lab.transpose(0, 2, 1).reshape(count * k, 3)  # entry i, coeff j → pixel i·k + j
        cimg[:count * k, :3] = pix
        cimg[:count * k, 3] = 255
        files["shN_centroids.webp"] = _webp(cimg.reshape(ch, cw, 4))
        lab16 = labels.astype(np.uint32)
        files["shN_labels.webp"] = _webp(texture(np.stack([lab16 & 0xFF, lab16 >> 8], 1).astype(np.uint8)))
        meta["shN"] = {"count": count, "bands": degree, "codebook": [float(v) for v in n_code],
                       "files": ["shN_centroids.webp", "shN_labels.webp"]}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("meta.json", json.dumps(meta))
        for name, data in files.items():
            z.writestr(name, data)


# ------------------------------------------------------------------------------------------------- reading
def read_sog(path: str | Path) -> Gaussians:
    """Read a bundled SOG version 2 file (``.sog`` ZIP with ``meta.json`` at its root) into Gaussians, in file
    (Morton) order."""
    path = Path(path)
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise FormatError(f"{path}: not a bundled SOG file (not a ZIP archive)") from None
    with z:
        names = set(z.namelist())
        if "meta.json" not in names:
            raise FormatError(f"{path}: the SOG bundle has no meta.json at its root")
        try:
            meta = json.loads(z.read("meta.json").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FormatError(f"{path}: meta.json is not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise FormatError(f"{path}: meta.json is not an object")
        version = meta.get("version")
        if version != SOG_VERSION:
            raise FormatError(f"{path}: SOG version {version!r}; lyra reads version 2 (re-save it with "
                              "splat-transform)")

        def image(field: str, i: int) -> np.ndarray:
            try:
                name = meta[field]["files"][i]
            except (KeyError, IndexError, TypeError):
                raise FormatError(f"{path}: meta.json lacks {field}.files[{i}]") from None
            if name not in names:
                raise FormatError(f"{path}: {name} named by meta.json is not in the bundle")
            return _unwebp(z.read(name), name, path)

        try:
            n = int(meta["count"])
            mins = np.asarray(meta["means"]["mins"], dtype=np.float64)
            maxs = np.asarray(meta["means"]["maxs"], dtype=np.float64)
            s_code = np.asarray(meta["scales"]["codebook"], dtype=np.float64)
            c_code = np.asarray(meta["sh0"]["codebook"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{path}: meta.json lacks count, means.mins/maxs or a codebook") from None
        if n < 1 or mins.shape != (3,) or maxs.shape != (3,) or len(s_code) != 256 or len(c_code) != 256:
            raise FormatError(f"{path}: meta.json has a bad count, means range or codebook size")

        def flat(img: np.ndarray, what: str) -> np.ndarray:
            px = img.reshape(-1, 4)
            if len(px) < n:
                raise FormatError(f"{path}: {what} holds {len(px)} pixels for {n} Gaussians")
            return px[:n].astype(np.int64)

        lo, hi = flat(image("means", 0), "means_l"), flat(image("means", 1), "means_u")
        q16 = lo[:, :3] | (hi[:, :3] << 8)
        span = np.where(maxs > mins, maxs - mins, 1.0)
        means = _inv_log_transform(mins + span * (q16 / 65535.0))
        qp = flat(image("quats", 0), "quats")
        tag = qp[:, 3] - 252
        if np.any((tag < 0) | (tag > 3)):
            raise FormatError(f"{path}: quats.webp has alpha tags outside 252..255")
        rest = (qp[:, :3] / 255.0 * 2 - 1) / _SQRT2
        quats = np.zeros((n, 4))
        keep = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[tag]
        np.put_along_axis(quats, keep, rest, 1)
        quats[np.arange(n), tag] = np.sqrt(np.maximum(0.0, 1 - (rest ** 2).sum(1)))
        sp = flat(image("scales", 0), "scales")
        scales = np.exp(s_code[sp[:, :3]])
        cp = flat(image("sh0", 0), "sh0")
        dc = c_code[cp[:, :3]]
        opac = cp[:, 3] / 255.0
        sh = None
        if meta.get("shN"):
            try:
                bands, count = int(meta["shN"]["bands"]), int(meta["shN"]["count"])
                n_code = np.asarray(meta["shN"]["codebook"], dtype=np.float64)
            except (KeyError, TypeError, ValueError):
                raise FormatError(f"{path}: meta.json shN lacks bands, count or codebook") from None
            if bands not in _SH_COEFFS or len(n_code) != 256 or not 1 <= count <= 65536:
                raise FormatError(f"{path}: meta.json shN has bad bands/count/codebook")
            k = _SH_COEFFS[bands]
            cimg = image("shN", 0)
            if cimg.shape[1] != 64 * k or cimg.shape[0] * 64 < count:
                raise FormatError(f"{path}: shN_centroids is {cimg.shape[1]}x{cimg.shape[0]}, expected width {64 * k}")
            cent = n_code[cimg.reshape(-1, 4)[:count * k, :3].astype(np.int64)].reshape(count, k, 3)
            lp = flat(image("shN", 1), "shN_labels")
            labels = lp[:, 0] | (lp[:, 1] << 8)
            if np.any(labels >= count):
                raise FormatError(f"{path}: shN_labels points past the palette ({count} entries)")
            sh = cent[labels]
            full = (bands + 1) ** 2 - 1
            if full != k:
                raise FormatError(f"{path}: shN bands {bands} do not match {k} coefficients")
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return Gaussians(means=t(means), quats=torch.nn.functional.normalize(t(quats), dim=-1), scales=t(scales),
                     opacities=t(opac), colors=t(dc * SH_C0 + 0.5), sh_rest=None if sh is None else t(sh))


__all__ = ["DEFAULT_SH_PALETTE", "SOG_VERSION", "quantize_1d", "read_sog", "sog_order", "write_sog"]
