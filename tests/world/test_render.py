"""Shading, anti-aliasing, pre-filtered textures, shadows and batching."""

import math

import torch

from lyra.world import textures as T
from lyra.world.lighting import shadow_maps
from lyra.world.render import render
from lyra.world.scene import SceneBatch, SceneBuilder
from tests.world.world_helpers import camera, lights, primitives_scene


def test_filtered_square_wave_closed_form():
    x = torch.linspace(-3.0, 3.0, 2001)
    # unfiltered (tiny footprint): the square wave itself, away from its jumps
    sq = T.filtered_square(x, torch.full_like(x, 1e-5))
    frac = x - torch.floor(x)
    away = ((frac - 0.5).abs() > 1e-3) & (frac > 1e-3) & (frac < 1 - 1e-3)
    assert torch.equal(sq[away], (frac[away] >= 0.5).float())
    # a footprint of whole periods averages to exactly 1/2
    for w in (1.0, 2.0, 3.0):
        assert torch.allclose(T.filtered_square(x, torch.full_like(x, w)), torch.full_like(x, 0.5), atol=1e-5)
    # half a period centred on the middle of the 1-half: the average of a triangle ramp
    assert T.filtered_square(torch.tensor([0.75]), torch.tensor([0.5])).item() == 1.0
    assert abs(T.filtered_square(torch.tensor([0.5]), torch.tensor([0.5])).item() - 0.5) < 1e-6


def test_filtered_pulse_mean_and_far_field():
    x = torch.rand(1000, generator=torch.Generator().manual_seed(0)) * 50
    width = torch.tensor(0.1)
    p = T.filtered_pulse(x, width, torch.full_like(x, 4.0))  # 4 whole periods: the duty cycle
    assert torch.allclose(p, torch.full_like(x, 0.1), atol=1e-4)
    grid = torch.linspace(0.0, 1.0, 100001)[:-1]
    assert abs(T.filtered_pulse(grid, width, torch.full_like(grid, 1e-5)).mean().item() - 0.1) < 1e-3


def test_fbm_band_limit():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(3, 5000, generator=g) * 10
    fine = T.fbm(q, torch.zeros(5000))
    bound = 3 * sum(T._OCTAVE_AMP) / T._NOISE_NORM  # every sinusoid at +1
    assert fine.abs().max() <= bound and 0.3 < fine.std() < 0.8
    assert torch.equal(T.fbm(q, torch.full((5000,), 10.0)), torch.zeros(5000))  # footprint >> period: mean
    mid = T.fbm(q, torch.full((5000,), 0.3))  # only the lowest octaves survive
    assert 0 < mid.std() < fine.std()


def test_adaptive_aa_equals_full_supersampling_on_edges(prim_scene):
    cam = camera(width=64, height=48)
    full = render(prim_scene, cam, aa="full")
    adaptive = render(prim_scene, cam, aa="adaptive")
    none = render(prim_scene, cam, aa="none")
    e = adaptive.edges
    assert 0.02 < e.float().mean() < 0.5
    # edge pixels: exactly the 4-sample mean; elsewhere: the centre sample
    assert torch.equal(adaptive.rgb[:, e], full.rgb[:, e])
    assert torch.equal(adaptive.rgb[:, ~e], none.rgb[:, ~e])
    # depth and ids always come from the pixel centre
    assert torch.equal(adaptive.depth, none.depth) and torch.equal(full.ids, none.ids)
    # every id boundary is an edge pixel on both sides
    diff = none.ids[:, 1:] != none.ids[:, :-1]
    assert e[:, 1:][diff].all() and e[:, :-1][diff].all()
    # supersampling changed edge colours (it is not a no-op) and interior pixels are close to the 4-mean
    assert (adaptive.rgb[:, e] - none.rgb[:, e]).abs().max() > 0.05
    assert (full.rgb[:, ~e] - none.rgb[:, ~e]).abs().mean() < 0.03


def test_shadow_under_a_sphere_with_overhead_sun():
    b = SceneBuilder("outdoor", 0)
    lights(b, sun=(0.0, -1.0, 0.0), extent=10.0)
    grey = b.material((0.5, 0.5, 0.5))
    b.plane((0.0, -1.0, 0.0), 0.0, grey)
    o = b.new_object((0.0, 0.0, 5.0))
    b.ellipsoid(o, (0.0, -2.0, 5.0), (0.8, 0.8, 0.8), grey)
    scene = b.build()
    batch = SceneBatch.pack([scene])
    maps = shadow_maps(batch, torch.zeros(1, dtype=torch.long), torch.zeros(1))
    res = maps.res_static
    m = maps.static.reshape(res, res)
    # the map sees the sphere's top (depth 40 - 2.8 from the map plane at y = -40) in its middle
    assert abs(m[res // 2, res // 2].item() - (40.0 - 2.8)) < 0.05
    assert torch.isinf(m[0, 0])
    cam = camera(eye=(0.0, -3.0, 0.0), target=(0.0, 0.0, 5.0), width=80, height=60)
    r = render(scene, cam)
    o_, d_ = cam.rays(normalize=False)
    p = o_ + d_ * r.depth[..., None]
    ground = r.ids == 1
    dist = torch.hypot(p[..., 0], p[..., 2] - 5.0)
    lum = r.rgb.mean(0)
    shade_in = lum[ground & (dist < 0.6)]
    lit = lum[ground & (dist > 1.2) & (dist < 3.0)]
    assert shade_in.numel() > 20 and lit.numel() > 20
    # albedo 0.5: lit = 0.5 (ambient 0.2 + sun 1.0), shadowed = 0.5 · 0.2
    assert torch.allclose(lit, torch.full_like(lit, 0.6), atol=1e-4)
    assert torch.allclose(shade_in, torch.full_like(shade_in, 0.1), atol=1e-4)


def test_batched_scenes_match_single_renders():
    a = primitives_scene()
    bld = SceneBuilder("indoor", 1)
    lights(bld)
    m = bld.material((0.7, 0.3, 0.3), (0.2, 0.2, 0.6), T.PAT_STRIPES, 3.0, 0.2, 2.0)
    bld.room((-2.0, -3.0, -1.0), (2.0, 0.0, 6.0), m, m, m)
    o = bld.new_object()
    bld.box(o, (0.0, -0.5, 3.0), (0.5, 0.5, 0.5), m)
    bld.point_light((0.0, -2.5, 2.0), (0.5, 0.5, 0.4), 3.0, (-2.0, -3.0, -1.0), (2.0, 0.0, 6.0))
    b = bld.build()
    cam = camera(width=48, height=32)
    cams = cam.reshape(1).c2w.expand(2, 4, 4)
    from lyra.geometry.cameras import Cameras
    pair = Cameras(cam.K.expand(2, 3, 3), cams, cam.width, cam.height)
    joint = render([a, b], pair, scene_index=torch.tensor([0, 1]))
    for i, s in enumerate((a, b)):
        single = render(s, cam)
        assert torch.equal(joint.depth[i], single.depth)
        assert torch.equal(joint.ids[i], single.ids)
        assert torch.allclose(joint.rgb[i], single.rgb, atol=1e-5)


def test_render_is_bitwise_deterministic(prim_scene):
    cam = camera(width=40, height=30)
    r1, r2 = render(prim_scene, cam), render(prim_scene, cam)
    assert torch.equal(r1.rgb, r2.rgb) and torch.equal(r1.depth, r2.depth) and torch.equal(r1.ids, r2.ids)
    assert math.isfinite(r1.rgb.sum().item())
