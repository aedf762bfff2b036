"""Procedural, pre-filtered textures and the sky, evaluated at 3D points (so every view agrees).

A material is one row of ``MAT_DIM`` floats (layout below). A texture maps a texture-space point
``q`` [3, k] (component-major; metres: object-local coordinates for objects, world coordinates for planes and rooms) to
an albedo. Every pattern is *band-limited by the pixel footprint* ``w`` [k] (metres): square waves and
lines are box-filtered in closed form (integral differences), noise octaves fade out when their
period approaches the footprint. This is the texture half of the anti-aliasing; silhouettes are
supersampled by the renderer.

Material layout (``MAT_DIM`` = 16):

=======  ===================================================================================
0:3      colour A (linear, [0, 1])
3:6      colour B (second colour: stripes, mortar, windows, veins, ...)
6        pattern id (``PAT_*``)
7        pattern frequency (cycles per metre)
8        noise amplitude (relative brightness modulation by fbm noise, 0 = none)
9        noise frequency (cycles per metre of the lowest octave)
10:13    pattern direction (unit vector in texture space; stripes, gradients, marble)
13       pattern parameter (line width of mortar/seams, window fraction, ...)
14       phase (random offset so equal materials on different objects differ)
15       emission (added light, e.g. a lamp shade)
16       specular reflectance at normal incidence ``F0`` (photo style only; 0 = matte)
17       specular exponent (Blinn-Phong shininess; photo style only)
18       photo texture index into :mod:`lyra.world.photo_textures` (``PAT_PHOTO`` only)
=======  ===================================================================================

``PAT_PHOTO`` (photo-style worlds only): the albedo is colour A times a real photograph (mean luminance 1),
projected like bricks (:func:`planar_uv`), ``freq`` texture repeats per metre, filtered by the footprint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from lyra.world._compile import kernel

MAT_DIM = 19
PAT_NOISE, PAT_STRIPES, PAT_CHECKS, PAT_BRICKS, PAT_GRADIENT, PAT_MARBLE, PAT_WINDOWS, PAT_PLANKS = range(8)
PAT_PHOTO = 8
N_PATTERNS = 9
PATTERN_NAMES = ("noise", "stripes", "checks", "bricks", "gradient", "marble", "windows", "planks", "photo")

#: Sky parameters: zenith 0:3, horizon 3:6, cloud colour 6:9, cloud cover 9, cloud scale 10, sun glow 11,
#: sun disc angular radius (radians) 12.
SKY_DIM = 13

_TWO_PI = 2 * math.pi


def _noise_directions() -> list[list[list[float]]]:
    """Fixed unit directions [4 octaves][3][3] for the sum-of-sinusoids fbm (same on every device)."""
    dirs = []
    golden = math.pi * (3 - math.sqrt(5))
    for k in range(12):
        y = 1 - 2 * (k + 0.5) / 12
        r = math.sqrt(1 - y * y)
        a = golden * k * 7.3
        dirs.append([r * math.cos(a), y, r * math.sin(a)])
    return [dirs[3 * o:3 * o + 3] for o in range(4)]


_DIRS = _noise_directions()
_PHASES = ((0.13, 0.71, 0.37), (0.59, 0.23, 0.91), (0.05, 0.47, 0.83), (0.67, 0.29, 0.11))
_OCTAVE_FREQ = (1.0, 2.03, 4.11, 8.27)
_OCTAVE_AMP = (0.5, 0.27, 0.15, 0.08)
_NOISE_NORM = sum(_OCTAVE_AMP) * math.sqrt(3) * 0.7071
# all 12 sinusoids as one affine map: phase_j + f_o · dir_j · q, in turns
_NOISE_MAT = torch.tensor([[f * c for c in _DIRS[o][j]] for o, f in enumerate(_OCTAVE_FREQ) for j in range(3)])
_NOISE_PHASE = torch.tensor([[_PHASES[o][j]] for o in range(4) for j in range(3)])
_NOISE_FREQ = torch.tensor(_OCTAVE_FREQ)[:, None]
_NOISE_AMP = torch.tensor(_OCTAVE_AMP)[:, None]


def fbm(q: Tensor, w: Tensor) -> Tensor:
    """Band-limited fractal noise in about [-1, 1]: 4 octaves of 3 sinusoids in fixed directions.

    Args:
        q: points ``[3, k]`` (component-major) in noise units (one unit = one period of the lowest
           octave).
        w: filter footprint ``[k]`` in the same units; octaves whose period is below ~2 footprints
           fade to zero (their mean), so distant or grazing surfaces do not alias.
    """
    dev = q.device
    turns = torch.addmm(_NOISE_PHASE.to(dev), _NOISE_MAT.to(dev), q)  # [12, k]
    waves = torch.sin(turns * _TWO_PI).reshape(4, 3, -1).sum(1)  # [4, k]
    fade = (1.5 - 2.0 * _NOISE_FREQ.to(dev) * w).clamp(0.0, 1.0)  # [4, k]
    return (waves * fade * _NOISE_AMP.to(dev)).sum(0) / _NOISE_NORM


def _frac(x: Tensor) -> Tensor:
    return x - torch.floor(x)


def filtered_square(x: Tensor, w: Tensor) -> Tensor:
    """Box-filtered square wave of period 1: 0 on [0, .5), 1 on [.5, 1), averaged over width ``w``.

    Closed form: difference of its integral ``I(x) = floor(x)/2 + max(frac(x) - 1/2, 0)`` at the
    footprint ends, taken relative to ``floor(x)`` to keep float32 precision far from the origin.
    """
    w = w.clamp_min(1e-4)
    x = _frac(x)
    a, b = x - 0.5 * w, x + 0.5 * w
    ia = 0.5 * torch.floor(a) + (_frac(a) - 0.5).clamp_min(0.0)
    ib = 0.5 * torch.floor(b) + (_frac(b) - 0.5).clamp_min(0.0)
    return ((ib - ia) / w).clamp(0.0, 1.0)


def filtered_pulse(x: Tensor, width: Tensor, w: Tensor) -> Tensor:
    """Box-filtered train of lines: 1 on ``[0, width)`` of each unit period, 0 elsewhere."""
    w = w.clamp_min(1e-4)
    x = _frac(x)
    a, b = x - 0.5 * w, x + 0.5 * w
    ia = width * torch.floor(a) + torch.minimum(_frac(a), width)
    ib = width * torch.floor(b) + torch.minimum(_frac(b), width)
    return ((ib - ia) / w).clamp(0.0, 1.0)


def hash1(n: Tensor) -> Tensor:
    """A float hash in [0, 1) of (integer-valued) ``n``; used for per-brick / per-plank tints."""
    return _frac(torch.sin(n * 12.9898 + 4.1414) * 43758.5453)


def planar_uv(q: Tensor, n_local: Tensor) -> tuple[Tensor, Tensor]:
    """Surface coordinates ``(u, v)`` [k] by projecting along the dominant axis of the local normal.

    ``q``, ``n_local`` are ``[3, k]``. ``v`` is the vertical coordinate (-y is up) on vertical faces;
    on horizontal faces ``(u, v) = (x, z)``.
    """
    ax = n_local.abs()
    horiz = (ax[1] >= ax[0]) & (ax[1] >= ax[2])
    x_face = (ax[0] > ax[2]) & ~horiz
    u = torch.where(x_face, q[2], q[0])
    v = torch.where(horiz, q[2], -q[1])
    return u, v


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


# ---------------------------------------------------------------------- patterns
# Each pattern maps (q [3,k], n [3,k], w [k], prm [6,k] = freq, phase, direction xyz, line width) to the
# mix factor s in [0, 1] between colour A and colour B.
def _noise(q, n, w, prm):
    freq, phase = prm[0], prm[1]
    return (0.5 + 0.7 * fbm(q * freq + phase, w * freq)).clamp(0.0, 1.0)


def _stripes(q, n, w, prm):
    freq, phase = prm[0], prm[1]
    return filtered_square(_dot(q, prm[2:5]) * freq + phase, w * freq)


def _checks(q, n, w, prm):
    freq, phase = prm[0], prm[1]
    wf = w * freq
    s = (1 - 2 * filtered_square(q[0] * freq + phase, wf)) * (1 - 2 * filtered_square(q[1] * freq + phase, wf)) \
        * (1 - 2 * filtered_square(q[2] * freq + phase, wf))
    return 0.5 - 0.5 * s


def _gradient(q, n, w, prm):
    return (_dot(q, prm[2:5]) * prm[0] + 0.5).clamp(0.0, 1.0)


def _marble(q, n, w, prm):
    freq, phase = prm[0], prm[1]
    wf = w * freq
    x = _dot(q, prm[2:5]) * freq + 0.6 * fbm(q * (2 * freq) + phase, 2 * wf)
    fade = (1.5 - 2.0 * wf).clamp(0.0, 1.0)
    return 0.5 + 0.5 * fade * torch.sin(_TWO_PI * (x + phase))


def _bricks(q, n, w, prm):
    freq, phase, line = prm[0], prm[1], prm[5]
    u, v = planar_uv(q, n)
    u = u + phase
    hb = 1.0 / freq  # brick height; width 2.2 hb
    row = torch.floor(v / hb)
    uu = u / (2.2 * hb) + 0.5 * torch.remainder(row, 2.0)
    mortar_v = filtered_pulse(v / hb, line, w / hb)
    mortar_u = filtered_pulse(uu, line / 2.2, w / (2.2 * hb))
    mortar = 1 - (1 - mortar_v) * (1 - mortar_u)
    tint = (hash1(row * 17.0 + torch.floor(uu)) - 0.5) * 0.5 * (1 - 2 * w * freq).clamp(0.0, 1.0)
    return (mortar + (1 - mortar) * tint.clamp_min(0.0)).clamp(0.0, 1.0)


def _windows(q, n, w, prm):
    # facade cells of 1/freq metres wide and 1.2/freq high, the window in the middle `line` fraction
    freq, phase, line = prm[0], prm[1], prm[5]
    u, v = planar_uv(q, n)
    wf = w * freq
    cu = (u + phase) * freq + 0.5 * line
    cv = v * freq / 1.2 + 0.5 * line
    return filtered_pulse(cu, line, wf) * filtered_pulse(cv, line, wf / 1.2)


def _planks(q, n, w, prm):
    freq, phase, line = prm[0], prm[1], prm[5]
    u, v = planar_uv(q, n)
    across = (v + phase) * freq
    wf = w * freq
    seam = filtered_pulse(across, line, wf)
    tint = hash1(torch.floor(across)) * (1 - 2 * wf).clamp(0.0, 1.0)
    return (0.35 * tint + seam).clamp(0.0, 1.0)


PATTERNS = tuple(kernel(f) for f in (_noise, _stripes, _checks, _bricks, _gradient, _marble, _windows, _planks))
_PRM_COLS = (7, 14, 10, 11, 12, 13)  # freq, phase, direction xyz, line width


@kernel
def _finish_albedo(col_a: Tensor, col_b: Tensor, s: Tensor, q: Tensor, w: Tensor, amp: Tensor, nf: Tensor,
                   phase: Tensor) -> Tensor:
    """Mix the two colours by ``s`` and modulate brightness by ``1 + amp · fbm``."""
    rgb = torch.lerp(col_a, col_b, s)
    n = fbm(q * nf + phase * 3.1, w * nf)
    return (rgb * (1 + amp * n)).clamp(0.0, 1.0)


class Params:
    """Material parameters of ``k`` points, gathered column by column on first use.

    ``table`` [MAT_DIM, X] (contiguous, one column per material), ``index`` [k] material of each point.
    ``m[c]`` is parameter ``c`` of every point ``[k]``; ``m.rows(cols)`` stacks columns. Narrow column
    gathers from a small table are far cheaper on CPU than gathering whole material rows.
    """

    def __init__(self, table: Tensor, index: Tensor) -> None:
        self.table, self.index = table, index
        self._cache: dict[int, Tensor] = {}

    def __getitem__(self, c: int) -> Tensor:
        if c not in self._cache:
            self._cache[c] = self.table[c].index_select(0, self.index)
        return self._cache[c]

    def rows(self, cols: Sequence[int]) -> Tensor:
        return torch.stack([self[c] for c in cols], 0)

    def subset(self, idx: Tensor) -> Params:
        return Params(self.table, self.index.index_select(0, idx))


def albedo(mat: Params, q: Tensor, n_local: Tensor, w: Tensor) -> Tensor:
    """Albedo ``[3, k]`` in [0, 1] of surface points (all inputs component-major).

    Args:
        mat: the points' material parameters (:class:`Params`).
        q: texture-space points ``[3, k]`` (metres).
        n_local: surface normals in texture space ``[3, k]`` (for planar patterns).
        w: pixel footprint at each point ``[k]`` (metres, already enlarged for grazing views).
    """
    pat = mat[6].round().long()
    present = torch.bincount(pat, minlength=N_PATTERNS).tolist()
    if present[PAT_PHOTO]:
        return _albedo_with_photos(mat, q, n_local, w, pat)
    if sum(1 for c in present if c) == 1:
        p = next(i for i, c in enumerate(present) if c)
        s = PATTERNS[p](q, n_local, w, mat.rows(_PRM_COLS))
    else:
        s = torch.zeros_like(w)
        for p in range(N_PATTERNS):
            if not present[p]:
                continue
            idx = (pat == p).nonzero().squeeze(1)
            sub = mat.subset(idx)
            s.index_copy_(0, idx, PATTERNS[p](q.index_select(1, idx), n_local.index_select(1, idx),
                                              w.index_select(0, idx), sub.rows(_PRM_COLS)))
    return _finish_albedo(mat.rows((0, 1, 2)), mat.rows((3, 4, 5)), s, q, w, mat[8], mat[9], mat[14])


def _albedo_with_photos(mat: Params, q: Tensor, n_local: Tensor, w: Tensor, pat: Tensor) -> Tensor:
    """:func:`albedo` where some points have ``PAT_PHOTO`` materials (photo-style worlds)."""
    from lyra.world.photo_textures import sample_photo

    out = torch.zeros(3, w.numel(), device=w.device)
    photo = pat == PAT_PHOTO
    idx = photo.nonzero().squeeze(1)
    rest = (~photo).nonzero().squeeze(1)
    if rest.numel():
        out.index_copy_(1, rest, albedo(mat.subset(rest), q.index_select(1, rest), n_local.index_select(1, rest),
                                        w.index_select(0, rest)))
    sub = mat.subset(idx)
    qs, ns, ws = q.index_select(1, idx), n_local.index_select(1, idx), w.index_select(0, idx)
    u, v = planar_uv(qs, ns)
    freq = sub[7]
    tex = sample_photo(sub[18].round().long(), u * freq + sub[14], v * freq + 0.37 * sub[14], ws * freq)
    nf = sub[9]
    n = fbm(qs * nf + sub[14] * 3.1, ws * nf)
    rgb = (tex * sub.rows((0, 1, 2)) * (1 + sub[8] * n)).clamp(0.0, 1.0)
    out.index_copy_(1, idx, rgb)
    return out


def _sky_parts(d: Tensor, sky: Tensor, sun_dir: Tensor, w_ang: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The sky of :func:`sky_color` without the sun: colour ``[3, k]``, sun glow ``[k]`` and disc ``[k]`` weights."""
    el = -d[1]
    t = (el / 0.6).clamp(0.0, 1.0).pow(0.7)
    col = torch.lerp(sky[3:6], sky[0:3], t)
    below = (-el).clamp_min(0.0)
    col = col * (1 - 0.5 * (below / 0.2).clamp(max=1.0))
    # clouds: noise on the plane above the camera, fading near the horizon
    el_c = el.clamp_min(0.02)
    scale = sky[10]
    plane = torch.stack([d[0] / el_c * scale, d[2] / el_c * (0.8 * scale), torch.zeros_like(el_c)], 0)
    cover = sky[9]
    n = fbm(plane, w_ang / el_c**2 * scale)
    cloud = ((n + cover - 0.5) * 3.0).clamp(0.0, 1.0) * (el / 0.08).clamp(0.0, 1.0)
    col = torch.lerp(col, sky[6:9], cloud * 0.85)
    # sun: glow plus a disc whose edge is one pixel soft
    cosang = _dot(d, sun_dir).clamp(-1.0, 1.0)
    c2 = cosang.clamp_min(0.0)
    c2 = c2 * c2
    c2 = c2 * c2
    c2 = c2 * c2
    c2 = c2 * c2
    glow = sky[11] * c2 * c2  # cos^32
    ang = torch.acos(cosang)
    edge = (sky[12] - ang) / w_ang.clamp_min(1e-4) + 0.5
    disc = edge.clamp(0.0, 1.0) * (1 - cloud)
    return col, glow, disc


@kernel
def sky_color(d: Tensor, sky: Tensor, sun_dir: Tensor, sun_col: Tensor, w_ang: Tensor) -> Tensor:
    """Sky radiance ``[3, k]`` for unit view directions ``d`` [3, k] (points at infinity: depth = inf).

    A function of direction only, hence identical from every camera position. ``sky`` [SKY_DIM, k or 1],
    ``sun_dir``/``sun_col`` [3, k or 1] (unit direction *towards* the sun), ``w_ang`` [k] angular
    footprint of a pixel in radians (filters the clouds and the sun disc). World -y is up.
    """
    col, glow, disc = _sky_parts(d, sky, sun_dir, w_ang)
    col = col + sun_col * (glow + disc)
    return col.clamp(0.0, 1.0)


@kernel
def sky_radiance(d: Tensor, sky: Tensor, sun_dir: Tensor, sun_col: Tensor, w_ang: Tensor, gain: Tensor,
                 disc_gain: Tensor) -> Tensor:
    """High-dynamic-range sky of the photo style: :func:`sky_color` times ``gain`` [k or 1], the sun disc times
    ``disc_gain`` [k or 1] more, not clamped above (linear radiance for :mod:`lyra.world.camera_model`)."""
    col, glow, disc = _sky_parts(d, sky, sun_dir, w_ang)
    return (gain * (col + sun_col * glow) + sun_col * (disc * disc_gain)).clamp_min(0.0)
