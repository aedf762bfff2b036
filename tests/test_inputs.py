"""lyra.inputs: image loading on real files written by Pillow, fitting to the working size, default camera."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from lyra.errors import ConfigError, InputFileError
from lyra.inputs import DEFAULT_FOV_Y_DEG, default_camera, fit_depth_to_size, fit_to_size, load_image

RED, BLUE = (255, 0, 0), (0, 0, 255)


def two_halves(w: int = 40, h: int = 20) -> Image.Image:
    """Left half red, right half blue."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = RED
    a[:, w // 2:] = BLUE
    return Image.fromarray(a)


def test_rgb_png_exact(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.shape == (3, 7, 9) and img.dtype == torch.float32
    assert torch.equal(img, torch.from_numpy(a).permute(2, 0, 1).float() / 255.0)


@pytest.mark.parametrize("orientation, top_colour", [(1, None), (6, RED), (8, BLUE), (3, None)])
def test_exif_orientation_applied(tmp_path, orientation, top_colour):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    two_halves().save(path, quality=95, exif=exif)
    img = load_image(path)
    if orientation in (6, 8):  # rotated a quarter turn: stored 40x20 → shown 20 wide, 40 tall
        assert img.shape == (3, 40, 20)
        top, bottom = img[:, :15].mean(dim=(1, 2)), img[:, 25:].mean(dim=(1, 2))
        want = torch.tensor(top_colour, dtype=torch.float32) / 255
        other = torch.tensor(BLUE if top_colour == RED else RED, dtype=torch.float32) / 255
        assert torch.allclose(top, want, atol=0.05) and torch.allclose(bottom, other, atol=0.05)
    else:
        assert img.shape == (3, 20, 40)
        left = img[:, :, :15].mean(dim=(1, 2))
        want = torch.tensor(RED if orientation == 1 else BLUE, dtype=torch.float32) / 255  # 3: turned 180°
        assert torch.allclose(left, want, atol=0.05)


def test_16bit_grayscale_png(tmp_path):
    a = (np.arange(6 * 5).reshape(6, 5) * 2000).astype(np.uint16)  # up to 58000 (> 8 bits)
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    img = load_image(tmp_path / "g16.png")
    want = torch.from_numpy(a.astype(np.float64) / 65535.0).float()
    assert img.shape == (3, 6, 5)
    for c in range(3):
        assert torch.allclose(img[c], want, atol=1e-6)


def test_grayscale_8bit(tmp_path):
    a = np.array([[0, 128], [255, 64]], np.uint8)
    Image.fromarray(a, mode="L").save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert torch.equal(img, torch.from_numpy(a).float().div(255).expand(3, 2, 2))


def test_alpha_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 200  # red 200
    rgba[..., 3] = [[255, 0], [51, 204]]  # alpha 1, 0, 0.2, 0.8
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    alpha = torch.tensor([[1.0, 0.0], [0.2, 0.8]])
    assert torch.allclose(img[0], 200 / 255 * alpha + (1 - alpha), atol=1e-6)
    assert torch.allclose(img[1], 1 - alpha, atol=1e-6) and torch.allclose(img[2], 1 - alpha, atol=1e-6)

    la = np.stack([np.full((2, 2), 100, np.uint8), np.array([[255, 0], [0, 255]], np.uint8)], -1)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    want = torch.tensor([[100 / 255, 1.0], [1.0, 100 / 255]])
    assert torch.allclose(img, want.expand(3, 2, 2), atol=1e-6)


def test_palette_with_and_without_transparency(tmp_path):
    p = Image.new("P", (3, 1))
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    p.putdata([0, 1, 2])
    p.save(tmp_path / "p.png")
    img = load_image(tmp_path / "p.png")
    assert torch.equal(img[:, 0], torch.eye(3))
    p.save(tmp_path / "pt.png", transparency=1)  # index 1 (green) transparent → white
    img = load_image(tmp_path / "pt.png")
    assert torch.equal(img[:, 0, 1], torch.ones(3)) and torch.equal(img[:, 0, 0], torch.tensor([1.0, 0, 0]))


def test_webp_lossless(tmp_path):
    from PIL import features

    if not features.check("webp"):
        pytest.skip("this Pillow has no WebP support")
    a = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.webp", lossless=True)
    assert torch.equal(load_image(tmp_path / "a.webp"), torch.from_numpy(a).permute(2, 0, 1).float() / 255)


def test_bad_files_raise_one_line_input_errors(tmp_path):
    two_halves(200, 100).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("this is not an image\n")
    (tmp_path / "folder.png").mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "ok.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "ok.png").read_bytes()[:6000])
    cases = {"trunc.jpg": "corrupt or truncated", "empty.png": "empty", "notes.png": "not an image",
             "folder.png": "directory", "missing.png": "no such file", "cut.png": "corrupt or truncated"}
    for name, words in cases.items():
        with pytest.raises(InputFileError) as info:
            load_image(tmp_path / name)
        msg = str(info.value)
        assert words in msg and "\n" not in msg and name in msg, msg


def test_heic_without_plugin_says_what_to_install(tmp_path):
    (tmp_path / "x.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        with pytest.raises(InputFileError, match="pillow-heif"):
            load_image(tmp_path / "x.heic")
    else:
        with pytest.raises(InputFileError):
            load_image(tmp_path / "x.heic")


def test_fit_to_size_crop_and_resize():
    img = torch.rand(3, 1080, 1920, generator=torch.Generator().manual_seed(0))
    out, note = fit_to_size(img, 176, 320)
    assert out.shape == (3, 176, 320) and float(out.min()) >= 0 and float(out.max()) <= 1
    assert note == "resized 1920x1080 → 320x176 (centre-crop 1920x1056)"
    same, none = fit_to_size(img, 1080, 1920)
    assert none is None and same is img
    # a pure crop (no resampling) returns the exact centre pixels
    small = torch.arange(3 * 4 * 6, dtype=torch.float32).reshape(3, 4, 6) / 72
    crop, note = fit_to_size(small, 4, 4)
    assert torch.equal(crop, small[:, :, 1:5]) and note == "resized 6x4 → 4x4 (centre-crop 4x4)"
    # a tall image is cropped top and bottom; a constant image stays constant (antialiased resize)
    tall = torch.full((3, 300, 100), 0.25)
    out, note = fit_to_size(tall, 16, 32)
    assert note == "resized 100x300 → 32x16 (centre-crop 100x50)"
    assert torch.allclose(out, torch.full((3, 16, 32), 0.25), atol=1e-6)
    # antialiasing: a 1-pixel checkerboard shrunk 4x averages to grey instead of aliasing
    checker = ((torch.arange(64)[:, None] + torch.arange(64)[None]) % 2).float().expand(3, 64, 64)
    out, _ = fit_to_size(checker, 16, 16)
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=0.05)
    with pytest.raises(ConfigError):
        fit_to_size(torch.rand(4, 8, 8), 8, 8)


def test_fit_depth_follows_the_image_crop():
    depth = torch.arange(6 * 8, dtype=torch.float32).reshape(6, 8) + 1
    depth[0, 0] = math.inf
    assert fit_depth_to_size(depth, 6, 8) is depth
    assert torch.equal(fit_depth_to_size(depth, 6, 6), depth[:, 1:7])  # same crop box as fit_to_size
    img = depth.expand(3, 6, 8)
    assert torch.equal(fit_to_size(img, 6, 6)[0][0], fit_depth_to_size(depth, 6, 6))
    half = fit_depth_to_size(depth, 3, 4)  # nearest: every value is one of the input's (no blending)
    assert half.shape == (3, 4) and set(half.flatten().tolist()) <= set(depth.flatten().tolist())
    assert torch.equal(half, depth[1::2, 1::2])  # nearest-exact: pixel centres 2i + 1


def test_default_camera_matches_world_presets():
    from lyra.world.presets import PRESETS

    assert {p.fov_y_deg for p in PRESETS.values()} == {DEFAULT_FOV_Y_DEG}
    cam = default_camera(176, 320)
    assert cam.shape == () and (cam.width, cam.height) == (320, 176)
    assert torch.equal(cam.c2w, torch.eye(4))
    fy = 0.5 * 176 / math.tan(math.radians(25.0))
    assert torch.allclose(cam.K, torch.tensor([[fy, 0, 160.0], [0, fy, 88.0], [0, 0, 1]]), rtol=1e-6)
    assert abs(float(default_camera(48, 80, 60.0).fov_y_deg) - 60.0) < 1e-4
    with pytest.raises(ConfigError):
        default_camera(10, 10, 180.0)
