"""The photo style of the worlds: soft shadows, sky visibility and indirect light, specular surfaces, photo
textures, the camera model, determinism, and the classic style left alone."""

import math

import pytest
import torch

from lyra.errors import ConfigError
from lyra.world import camera_model as cm
from lyra.world import make_example, sample_world
from lyra.world import textures as T
from lyra.world.lighting import light_frames, shadow_maps
from lyra.world.photo_light import sky_visibility, soft_lookup, with_sky_visibility
from lyra.world.photo_textures import bank_info, sample_photo, texture_ids
from lyra.world.render import render
from lyra.world.scene import LIGHT_DIM, SceneBatch, SceneBuilder
from tests.world.world_helpers import camera, lights


def photo_scene(sun_radius: float = 0.01, indirect: float = 1.0, ball_specular: float = 0.0):
    """Ground, a 3 m high thin wall along z at x = 0 and a sphere; the sun 20° off the zenith towards -x."""
    b = SceneBuilder("outdoor", 0)
    a = math.radians(20)
    lights(b, sun=(-math.sin(a), -math.cos(a), 0.0), extent=10.0)
    b.light += [0.0] * (LIGHT_DIM - len(b.light))
    b.light[25:30] = [indirect, 0.4, 1.0, 1.0, 1.0]
    b.sky[12] = sun_radius
    grey = b.material((0.5, 0.5, 0.5))
    b.plane((0.0, -1.0, 0.0), 0.0, grey)
    o = b.new_object((0.0, 0.0, 6.0))
    b.box(o, (0.0, -1.5, 6.0), (0.1, 1.5, 4.0), grey)
    ball = b.material((0.1, 0.1, 0.1), specular=ball_specular, shininess=200.0)
    o = b.new_object((-2.0, 0.0, 4.0))
    b.ellipsoid(o, (-2.0, -0.6, 4.0), (0.6, 0.6, 0.6), ball)
    return b.build(style="photo")


def _ground_line(scene, tan_r: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Lit fraction along x on the ground at z = 6 (across the shadow of the wall's top edge)."""
    batch = SceneBatch.pack([scene])
    maps = shadow_maps(batch, torch.zeros(1, dtype=torch.long), torch.zeros(1), 512, 256)
    x = torch.linspace(0.2, 2.5, 400)
    p = torch.stack([x, torch.zeros_like(x), torch.full_like(x, 6.0)])
    n = torch.tensor([0.0, -1.0, 0.0])[:, None].expand(3, x.numel())
    frame = light_frames(batch.light)[0][:, None]
    lit = soft_lookup(maps.static, maps.res_static, torch.zeros(x.numel(), dtype=torch.long), p, n, frame,
                      torch.tensor([tan_r]))
    return x, lit


def _penumbra_width(x: torch.Tensor, lit: torch.Tensor) -> float:
    return float(x[(lit > 0.9).nonzero()[0]] - x[(lit > 0.1).nonzero()[0]])


def test_soft_shadow_penumbra_widens_with_the_suns_angular_size():
    scene = photo_scene()
    x, narrow = _ground_line(scene, math.tan(0.005))
    _, wide = _ground_line(scene, math.tan(0.05))
    # the wall's shadow reaches from x = 0 to 3 m · tan 20° = 1.09 m; far beyond it everything is lit
    assert narrow[x < 0.8].max() < 0.1 and wide[x < 0.6].max() < 0.1
    assert narrow[x > 1.4].min() > 0.9 and wide[x > 1.6].min() > 0.9
    w_narrow, w_wide = _penumbra_width(x, narrow), _penumbra_width(x, wide)
    # penumbra ≈ 2 · (3 m / cos 20°) · tan r: 0.03 m (texel-limited, 0.04 m texels) vs 0.32 m
    assert w_wide > 3 * w_narrow and 0.15 < w_wide < 0.5, (w_narrow, w_wide)


def test_sky_visibility_is_lower_beside_a_wall_and_indirect_light_brightens_shadows():
    scene = photo_scene()
    batch = SceneBatch.pack([scene])
    maps = with_sky_visibility(batch, shadow_maps(batch, torch.zeros(1, dtype=torch.long), torch.zeros(1)))
    p = torch.tensor([[0.3, 0.0, 6.0], [6.0, 0.0, 6.0]]).T  # ground beside the wall, open ground
    n = torch.tensor([0.0, -1.0, 0.0])[:, None].expand(3, 2)
    vis = sky_visibility(maps, torch.zeros(2, dtype=torch.long), p, n, batch.light)
    assert vis[1] > 0.97 and vis[0] < 0.85, vis
    cam = camera(eye=(3.0, -2.0, 1.0), target=(0.5, 0.0, 6.0), width=80, height=60)
    on = render(scene, cam)
    off = render(photo_scene(indirect=0.0), cam)
    o_, d_ = cam.rays(normalize=False)
    pts = o_ + d_ * on.depth[..., None]
    ground = on.ids == 1
    shadow = ground & (pts[..., 0] > 0.15) & (pts[..., 0] < 0.8)
    sunny = ground & (pts[..., 0] > 1.6)
    assert shadow.sum() > 30 and sunny.sum() > 30
    gain_shadow = on.rgb.mean(0)[shadow].mean() / off.rgb.mean(0)[shadow].mean()
    gain_sunny = on.rgb.mean(0)[sunny].mean() / off.rgb.mean(0)[sunny].mean()
    assert gain_shadow > 1.3 and gain_shadow > gain_sunny + 0.2, (gain_shadow, gain_sunny)
    bright = photo_scene()
    bright.light[3:6] *= 4.0
    assert render(bright, cam).rgb.max() > 1.5  # high dynamic range: a bright sun's light is not clamped


def test_specular_surfaces_reflect_and_depend_on_the_view():
    cam = camera(eye=(-1.0, -1.2, 1.0), target=(-2.0, -0.6, 4.0), width=64, height=48)
    matte = render(photo_scene(ball_specular=0.0), cam)
    glossy = render(photo_scene(ball_specular=0.9), cam)
    ball = matte.ids == 3
    assert ball.sum() > 100
    assert glossy.rgb[:, ball].mean() > 2 * matte.rgb[:, ball].mean()
    other = render(photo_scene(ball_specular=0.9), camera(eye=(-4.0, -1.2, 2.0), target=(-2.0, -0.6, 4.0),
                                                          width=64, height=48))
    assert not torch.allclose(other.rgb[:, other.ids == 3].mean(1), glossy.rgb[:, ball].mean(1), rtol=0.02)


def test_photo_textures_bank_is_small_normalised_and_band_limited():
    info = bank_info()
    assert info["licence"].startswith("CC0") and len(info["textures"]) >= 12
    assert set(texture_ids("ground")) and set(texture_ids("wall"))
    g = torch.Generator().manual_seed(0)
    k = 4000
    tex = torch.full((k,), texture_ids("ground")[0], dtype=torch.long)
    u, v = torch.rand(k, generator=g) * 4, torch.rand(k, generator=g) * 4
    sharp = sample_photo(tex, u, v, torch.full((k,), 1e-3))
    blurred = sample_photo(tex, u, v, torch.full((k,), 2.0))
    lum = torch.tensor((0.2126, 0.7152, 0.0722))
    assert abs(float(lum @ sharp.mean(1)) - 1.0) < 0.1  # mean luminance 1 by construction
    assert (lum @ blurred).std() < 0.1 * (lum @ sharp).std()  # a wide footprint reads the mean (no aliasing)
    # mirrored repetition: continuous across the texture's border
    edge = sample_photo(tex[:2], torch.tensor([0.999, 1.001]), torch.tensor([0.5, 0.5]), torch.full((2,), 1e-3))
    assert (edge[:, 0] - edge[:, 1]).abs().max() < 1e-3


def test_photo_texture_material_shows_the_photo():
    b = SceneBuilder("outdoor", 0)
    lights(b, sun=(0.0, -1.0, 0.0))
    m = b.material((0.5, 0.5, 0.5), pattern=T.PAT_PHOTO, freq=0.5, texture=texture_ids("ground")[0])
    b.plane((0.0, -1.0, 0.0), 0.0, m)
    img = render(b.build(), camera(eye=(0.0, -1.5, 0.0), target=(0.0, 0.0, 3.0), width=64, height=48)).rgb
    ground = img[:, 24:, :]
    assert ground.std() > 0.02 and abs(float(ground.mean()) - 0.6) < 0.2  # albedo 0.5 · light 1.2 on average


def _flat(h=48, w=64, v=0.3):
    return torch.full((1, 3, h, w), v)


def test_exposure_is_metered_and_white_balance_tints():
    g = torch.Generator().manual_seed(0)
    rad = torch.rand(2, 3, 32, 48, generator=g) * 4
    depth = torch.full((2, 32, 48), 5.0)
    cam = cm.PhotoCamera(ev=0.0)
    a = cm.develop(rad, depth, cam)
    b = cm.develop(rad * 37.0, depth, cam)
    torch.testing.assert_close(a, b, atol=2e-5, rtol=0)  # auto-exposure: absolute radiance scale does not matter
    brighter = cm.develop(rad, depth, cm.PhotoCamera(ev=1.0))
    assert brighter.mean() > a.mean() + 0.05
    warm = cm.develop(_flat(), torch.full((1, 48, 64), 5.0), cm.PhotoCamera(wb=(1.2, 1.0, 0.8)))
    r, gg, bb = warm[0, :, 20, 30]
    assert r > gg > bb
    vig = cm.develop(_flat(), torch.full((1, 48, 64), 5.0), cm.PhotoCamera(vignette=0.4))
    assert vig[0, :, 0, 0].mean() < vig[0, :, 24, 32].mean() - 0.05


def test_sensor_noise_grows_with_the_signal():
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.full((1, 1, 64, 64), 0.01), torch.full((1, 1, 64, 64), 1.0)])
    y = cm.sensor_noise(x, torch.tensor(0.05), torch.tensor(0.002), g)
    dark, bright = (y - x)[0].std(), (y - x)[1].std()
    assert abs(float(bright) - math.sqrt(0.05**2 + 0.002**2)) < 0.006 and bright > 4 * dark


def test_jpeg_round_trip_degrades_within_bounds():
    from PIL import Image

    from lyra.world.photo_textures import _asset_dir

    with (_asset_dir() / "atlas.jpg").open("rb") as f:
        import numpy as np

        img = torch.from_numpy(np.asarray(Image.open(f).convert("RGB")).copy()).permute(2, 0, 1)[None].float() / 255
    img = img[..., :512]

    def psnr(q: int) -> float:
        out = cm.jpeg_roundtrip(img, q)
        assert out.shape == img.shape and out.min() >= 0 and out.max() <= 1
        return float(-10 * torch.log10((out - img).square().mean()))

    hi, lo = psnr(95), psnr(20)
    assert hi > 35 and 22 < lo < hi - 5, (hi, lo)


def test_defocus_blur_grows_with_distance_from_the_focus_plane():
    H, W = 32, 160
    checker = ((torch.arange(W)[None] // 2 + torch.arange(H)[:, None] // 2) % 2).float()
    img = checker[None, None].expand(1, 3, H, W).contiguous()
    depth = torch.tensor([2.0, 3.0, 4.0, 6.0, 12.0]).repeat_interleave(W // 5)[None, None].expand(1, H, W)
    out = cm.defocus(img, depth.contiguous(), focus=2.0, coc_inf=3.0)
    energy = [float((out[0, 0, 4:-4, k * 32 + 6:(k + 1) * 32 - 6].diff(dim=-1)).abs().mean()) for k in range(5)]
    ref = float(img[0, 0, 4:-4, 6:26].diff(dim=-1).abs().mean())
    assert abs(energy[0] - ref) < 1e-6  # in focus: untouched
    assert all(a > b for a, b in zip(energy, energy[1:], strict=False)), energy


def test_motion_blur_spreads_a_point_along_the_streak():
    img = torch.zeros(1, 1, 21, 21)
    img[0, 0, 10, 10] = 1.0
    out = cm.motion_blur(img, 6.0, 0.0)
    assert abs(float(out.sum()) - 1.0) < 1e-5
    assert out[0, 0, 10].sum() > 0.99 and (out[0, 0, 10] > 0.05).sum() >= 6  # horizontal streak, 6+ px long


def test_photo_style_is_deterministic_and_differs_from_classic():
    a = make_example(1000001, "micro", style="photo")
    b = make_example(1000001, "micro", style="photo")
    assert torch.equal(a.videos, b.videos) and torch.equal(a.depths, b.depths)
    c = make_example(1000001, "micro")
    assert not torch.equal(a.image, c.image)
    assert 0.05 < float(a.image.mean()) < 0.95 and a.image.min() >= 0 and a.image.max() <= 1


def test_classic_worlds_hold_no_photo_parameters():
    ws = sample_world(1000003, "micro")
    assert "style" not in ws.scene.meta and ws.camera is None
    assert not ws.scene.materials[:, 16:].any() and not ws.scene.light[25:].any()
    assert SceneBatch.pack([ws.scene]).style == "classic"
    photo = sample_world(1000003, "micro", style="photo")
    assert photo.scene.meta["style"] == "photo" and photo.camera is not None
    with pytest.raises(ValueError):
        SceneBatch.pack([ws.scene, photo.scene])
    with pytest.raises(ConfigError):
        sample_world(1000003, "micro", style="glossy")


def test_image_skies_are_hdr_and_turned_to_the_worlds_sun():
    from lyra.world.photo_textures import image_sky, sky_infos

    infos = sky_infos()
    assert len(infos) >= 3
    s = infos[0]
    assert s["peak"] > 1000  # a real sun through the gain map (the SDR base alone tops out at 1)
    az = 0.7
    rot = 2 * math.pi * (s["sun_x"] + 0.5) / s["width"] - az
    el = s["sun_elevation"]
    d = torch.tensor([[math.cos(el) * math.sin(az)], [-math.sin(el)], [math.cos(el) * math.cos(az)]])
    lum = torch.tensor((0.2126, 0.7152, 0.0722))
    at_sun = lum @ image_sky(d, torch.tensor([0]), torch.tensor([rot]), torch.tensor([1.0]))
    away = lum @ image_sky(d * torch.tensor([[-1.0], [1.0], [-1.0]]), torch.tensor([0]), torch.tensor([rot]),
                           torch.tensor([1.0]))
    assert at_sun > 0.3 * s["peak"] and away < 1e-3 * s["peak"]


def test_picture_style_saturates_and_steepens_about_mid_grey():
    g = torch.Generator().manual_seed(2)
    rad = torch.rand(1, 3, 32, 48, generator=g) * 2
    depth = torch.full((1, 32, 48), 5.0)
    plain = cm.develop(rad, depth, cm.PhotoCamera())
    vivid = cm.develop(rad, depth, cm.PhotoCamera(saturation=1.3))
    punchy = cm.develop(rad, depth, cm.PhotoCamera(contrast=0.6))

    def chroma(x):
        return (x - x.mean(1, keepdim=True)).abs().mean()

    assert chroma(vivid) > 1.2 * chroma(plain)
    assert punchy.std() > plain.std()
    dark, light = plain < 0.45, plain > 0.55
    assert (punchy[dark] <= plain[dark] + 1e-6).all() and (punchy[light] >= plain[light] - 1e-6).all()


def test_photo_batch_renders_each_world_as_alone():
    from lyra.world import make_examples

    seeds = (1000003, 1000004)  # indoor, outdoor with a photographed sky
    assert float(sample_world(1000004, "micro", style="photo").scene.light[30]) > 0
    batch = make_examples(seeds, "micro", style="photo")
    for s, ex in zip(seeds, batch, strict=True):
        assert torch.equal(ex.videos, make_example(s, "micro", style="photo").videos)
