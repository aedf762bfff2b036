"""Light of the photo-style worlds: soft sun shadows, sky visibility, one-bounce indirect light, glossy and
glass-like reflections, high-dynamic-range radiance (not clamped; :mod:`lyra.world.camera_model` develops it).

* **Soft shadows** (percentage-closer soft shadows on the key light's shadow map): a blocker search over a disc
  of radius ``min(z · tan r, 0.1 E)`` (``z`` the receiver's light-space depth, ``r`` the sun's angular radius,
  sky entry 12, ``E`` the map's half extent) averages the depth of the texels in front of the receiver; the
  penumbra radius is then ``(z − z_blocker) · tan r`` and 8 bilinear 2×2 comparisons on a disc of that radius,
  rotated by a hash of the world position (view independent), give the lit fraction (points with no blocker in
  the search disc are lit without filtering). A wider sun gives wider
  penumbrae; contact points stay sharp.
* **Sky visibility** (ambient occlusion from directional shadow maps): static casters are seen from
  ``len(SKY_DIRS)`` (7) fixed directions over the upper hemisphere (one orthographic map each, ``res_vis``
  texels, read at the nearest texel); the visibility ``V`` of a point is the cosine-weighted share of those
  directions it sees. View independent.
* **Indirect light** (one bounce, diffuse): the surroundings reflect ``ρ̄ · E_up`` (``ρ̄`` the scene's mean albedo,
  light entry 26; ``E_up`` the irradiance of open ground: sun + sky). It lights the lower hemisphere (ground
  bounce) and, with the weight ``1 − V``, the part of the sky a point does not see (occluders are lit too).
  Strength: light entry 25 (0 = off).
* **Specular** (materials with ``F0 > 0``, column 16): Schlick's Fresnel, a normalised Blinn-Phong sun highlight
  (exponent: column 17) in the shadow factor, and a reflection of the hemispherical ambient (sky above, ground
  bounce below) weighted by the sky visibility. Glass-like surfaces are dark with ``F0`` ≈ 0.05–0.1: mostly
  reflection at grazing angles. These are view dependent (unlike the classic worlds' shading).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.world._compile import kernel
from lyra.world.lighting import (
    ShadowMaps,
    _depth_maps,
    _lookup,
    add_point_lights,
    light_frames,
    map_coords,
    pcf,
    scene_params,
)
from lyra.world.photo_textures import image_sky
from lyra.world.raycast import Surface, Views
from lyra.world.scene import SceneBatch
from lyra.world.textures import Params, albedo, hash1, sky_radiance


def _sky_dirs() -> Tensor:
    """Directions towards the sky ``[K, 3]`` (world -y up): 6 at 40° elevation and the zenith."""
    dirs = []
    for elev, n, off in ((40.0, 6, 0.0), (90.0, 1, 0.0)):
        e = math.radians(elev)
        for i in range(n):
            a = 2 * math.pi * (i + off) / n
            dirs.append([math.cos(e) * math.sin(a), -math.sin(e), math.cos(e) * math.cos(a)])
    return torch.tensor(dirs)


SKY_DIRS = _sky_dirs()
#: Unit-disc taps of the soft-shadow filter (golden-angle spiral).
_DISC = torch.tensor([[math.sqrt((i + 0.5) / 8) * math.cos(2.39996 * i),
                       math.sqrt((i + 0.5) / 8) * math.sin(2.39996 * i)] for i in range(8)])
_SEARCH = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]) * 0.7


@dataclass
class PhotoMaps(ShadowMaps):
    """:class:`ShadowMaps` plus the sky-visibility maps ``sky_vis`` [S·K, res_vis²] (scene-major, K = len(SKY_DIRS))."""

    sky_vis: Tensor | None = None
    res_vis: int = 0


def with_sky_visibility(batch: SceneBatch, maps: ShadowMaps, res_vis: int = 192) -> PhotoMaps:
    """``maps`` with the sky-visibility maps of every scene's static casters (see the module doc)."""
    dev = batch.device
    S, K = batch.n_scenes, SKY_DIRS.shape[0]
    light = batch.light.repeat_interleave(K, 0).clone()  # [S·K, LIGHT_DIM]
    light[:, 0:3] = SKY_DIRS.to(dev).repeat(S, 1)
    scene = torch.arange(S, device=dev).repeat_interleave(K)
    vis = _depth_maps(batch, scene, torch.zeros(S * K, device=dev), res_vis, False, light=light)
    return PhotoMaps(maps.static, maps.res_static, maps.dynamic, maps.res_dynamic, maps.dyn_of_view, vis, res_vis)


def _texel(maps: Tensor, res: int, which: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Nearest texel values ``[k]`` at map coordinates ``x, y`` [k] (inf outside the map)."""
    xi, yi = torch.round(x), torch.round(y)
    inside = (xi >= 0) & (xi < res) & (yi >= 0) & (yi < res)
    idx = which * (res * res) + yi.clamp(0, res - 1).long() * res + xi.clamp(0, res - 1).long()
    return torch.where(inside, maps.reshape(-1).take(idx), torch.full_like(x, float("inf")))


def soft_lookup(maps: Tensor, res: int, which: Tensor, p: Tensor, n: Tensor, frame: Tensor, tan_r: Tensor) -> Tensor:
    """Lit fraction ``[k]`` of points ``p`` [3, k] (normals ``n``) with a sun of angular radius ``atan(tan_r)``
    (``tan_r`` [k or 1]); ``frame`` as in :func:`lyra.world.lighting._lookup`. See the module doc."""
    x, y, z, texel = map_coords(frame, res, p, n)
    E = frame[12]
    search = torch.minimum(z.clamp_min(0) * tan_r, 0.1 * E) / texel + 1.0  # texels
    blk_sum = torch.zeros_like(x)
    blk_n = torch.zeros_like(x)
    for o in _SEARCH.tolist():
        m = _texel(maps, res, which, x + o[0] * search, y + o[1] * search)
        blk_sum = blk_sum + torch.where(m < z, m, torch.zeros_like(m))
        blk_n = blk_n + (m < z).to(x.dtype)
    lit = torch.ones_like(x)
    sel = (blk_n > 0).nonzero().squeeze(1)  # no blocker in the search disc: fully lit, no filtering
    if sel.numel() == 0:
        return lit
    x, y, z, which = x[sel], y[sel], z[sel], which[sel] if which.numel() > 1 else which
    tan_s = tan_r[sel] if tan_r.numel() > 1 else tan_r
    z_blk = blk_sum[sel] / blk_n[sel]
    pen = ((z - z_blk).clamp_min(0) * tan_s / texel[sel] if texel.numel() > 1 else
           (z - z_blk).clamp_min(0) * tan_s / texel).clamp(0.0, 24.0)
    ps = p[:, sel]
    ang = 2 * math.pi * hash1(ps[0] * 3.17 + ps[1] * 5.71 + ps[2] * 7.93)
    ca, sa = torch.cos(ang), torch.sin(ang)
    acc = torch.zeros_like(x)
    for o in _DISC.tolist():
        ox, oy = o[0] * ca - o[1] * sa, o[0] * sa + o[1] * ca
        acc = acc + pcf(maps, res, which, x + ox * pen, y + oy * pen, z)
    lit[sel] = acc / _DISC.shape[0]
    return lit


def sky_visibility(maps: PhotoMaps, which_scene: Tensor, p: Tensor, n: Tensor, light: Tensor) -> Tensor:
    """Cosine-weighted share ``[k]`` of :data:`SKY_DIRS` that points ``p`` [3, k] (normals ``n``) see."""
    K = SKY_DIRS.shape[0]
    dirs = SKY_DIRS.to(p.device)
    num = torch.zeros(p.shape[1], device=p.device)
    den = torch.full((p.shape[1],), 1e-4, device=p.device)
    res = maps.res_vis
    for k in range(K):
        row = light.clone()
        row[:, 0:3] = dirs[k]
        frame = light_frames(row)  # [S, 14]
        f = frame.T.index_select(1, which_scene) if frame.shape[0] > 1 else frame[0][:, None]
        x, y, z, _ = map_coords(f, res, p, n)
        lit = (z <= _texel(maps.sky_vis, res, which_scene * K + k, x, y)).to(p.dtype)  # nearest texel: AO is smooth
        w = (n[0] * dirs[k, 0] + n[1] * dirs[k, 1] + n[2] * dirs[k, 2]).clamp_min(0)
        num = num + w * lit
        den = den + w
    return torch.where(den > 1e-3, num / den, torch.ones_like(num))


@kernel
def _illuminate_photo(rgb: Tensor, p: Tensor, n: Tensor, view: Tensor, light: Tensor, lit: Tensor, vis: Tensor,
                      emission: Tensor, points: Tensor, spec: Tensor, shin: Tensor) -> Tensor:
    """Linear radiance ``[3, k]`` (≥ 0, not clamped above) of albedo ``rgb`` [3, k] at ``p``/``n`` [3, k] seen
    along unit ``view`` [3, k] (towards the camera). ``light`` [LIGHT_DIM, k or 1], ``lit``/``vis`` [k] key-light
    and sky visibility, ``emission``/``spec``/``shin`` [k], ``points`` as in the classic lighting."""
    L = light[0:3]
    sun = light[3:6]
    ndl = (n[0] * L[0] + n[1] * L[1] + n[2] * L[2]).clamp_min(0)
    hemi = 0.5 - 0.5 * n[1]
    ind, rho, ao = light[25], light[26], light[29]
    e_up = sun * (-L[1]).clamp_min(0) + light[6:9]  # irradiance of open ground
    bounce = ind * rho * e_up
    v_eff = 1 - ao * (1 - vis)
    ground = light[9:12] + bounce
    amb = torch.lerp(ground, light[6:9], hemi) * v_eff + bounce * (1 - v_eff)
    lum = amb + sun * (ndl * lit)
    lum = add_point_lights(lum, points, p, n)
    out = rgb * (lum + emission)
    # specular: Schlick Fresnel, Blinn-Phong sun highlight, ambient reflection
    ndv = (n[0] * view[0] + n[1] * view[1] + n[2] * view[2]).clamp(0.0, 1.0)
    fres = torch.where(spec > 0, spec + (1 - spec) * (1 - ndv) ** 5, torch.zeros_like(spec))
    h = L + view
    h = h * torch.rsqrt((h * h).sum(0) + 1e-12)
    ndh = (n[0] * h[0] + n[1] * h[1] + n[2] * h[2]).clamp_min(0)
    highlight = sun * (lit * ndl * ndh.pow(shin) * (shin + 8) / 8)
    refl_y = 2 * ndv * n[1] - view[1]  # y of the mirror direction
    env = torch.lerp(ground, light[6:9], 0.5 - 0.5 * refl_y) * v_eff
    out = out * (1 - fres) + fres * (env + highlight)
    rel = p - light[15:18]
    dist = torch.sqrt(rel[0] * rel[0] + rel[1] * rel[1] + rel[2] * rel[2])
    f = 1 - torch.exp(-(dist - light[19]).clamp_min(0) / light[18])
    return torch.lerp(out, light[12:15] * light[27], f).clamp_min(0.0)


def shade_photo(batch: SceneBatch, views: Views, surf: Surface, footprint: Tensor, maps: PhotoMaps) -> Tensor:
    """Linear radiance ``[3, k]`` (HDR, ≥ 0) of the surface points ``surf`` of a photo-style batch."""
    g = batch.tensors
    sc = views.scene.index_select(0, surf.view)
    S, M = g["materials"].shape[:2]
    mats = Params(g["materials"].reshape(S * M, -1).T.contiguous(), sc * M + surf.mat)
    rgb = albedo(mats, surf.q, surf.n_tex, footprint)
    light = scene_params(g["light"], sc)
    frame = scene_params(light_frames(g["light"]), sc)
    which = sc if S > 1 else torch.zeros_like(sc)
    tan_r = torch.tan(scene_params(g["sky"], sc)[12])
    lit = soft_lookup(maps.static, maps.res_static, which, surf.p, surf.normal, frame, tan_r)
    if maps.dynamic.shape[0]:
        dyn = maps.dyn_of_view.index_select(0, surf.view)
        lit_d = _lookup(maps.dynamic, maps.res_dynamic, dyn.clamp_min(0), surf.p, surf.normal, frame)
        lit = lit * torch.where(dyn >= 0, lit_d, 1.0)
    vis = sky_visibility(maps, sc, surf.p, surf.normal, g["light"])
    pts = g["points"]
    on = (pts[:, :, 3:6].sum(-1) > 0).any(0)
    pts = pts[:, on]
    points = torch.stack([scene_params(pts[:, li], sc) for li in range(pts.shape[1])], 0) if pts.shape[1] \
        else torch.zeros(0, 13, 1, device=sc.device)
    view = -surf.d * torch.rsqrt((surf.d * surf.d).sum(0))
    return _illuminate_photo(rgb, surf.p, surf.normal, view, light, lit, vis, mats[15], points, mats[16], mats[17])


def photo_sky(d: Tensor, sky: Tensor, light: Tensor, w_ang: Tensor) -> Tensor:
    """Sky radiance ``[3, k]`` of photo-style worlds in unit directions ``d`` [3, k]: the procedural sky in HDR
    (:func:`lyra.world.textures.sky_radiance`), or the world's photographed sky where light entry 30 names one.
    ``sky`` [SKY_DIM, k or 1], ``light`` [LIGHT_DIM, k or 1], ``w_ang`` [k] angular pixel footprint."""
    out = sky_radiance(d, sky, light[0:3], light[3:6], w_ang, light[27], light[28])
    k = d.shape[1]
    which = light[30].round().long().expand(k)
    sel = (which > 0).nonzero().squeeze(1)
    if sel.numel():
        rot, gain = light[31].expand(k), light[27].expand(k)
        out[:, sel] = image_sky(d[:, sel], which[sel] - 1, rot[sel], gain[sel])
    return out
