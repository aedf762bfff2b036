"""Cameras of real photos: intrinsics options and EXIF, a working size that follows the photo, Lyra-2
``trajectory.npz`` and a user path added to the six GEN3C trajectories."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from lyra.cli import main
from lyra.errors import ConfigError, FormatError
from lyra.geometry.cameras import Cameras
from lyra.geometry.intrinsics import parse_intrinsics, photo_camera, relative_path, resample_path, working_size_for
from lyra.geometry.trajectories import TRAJECTORY_NAMES, camera_path_dict, gen3c_trajectory, load_camera_path
from lyra.inputs import default_camera
from lyra.inputs_exif import FULL_FRAME_DIAGONAL_MM, exif_focal_px

SIZE = (48, 80)


# ------------------------------------------------------------------------------------------------ working size
@pytest.mark.parametrize(("h", "w", "want"), [(1080, 1920, (176, 320)), (1920, 1080, (320, 176)),
                                               (480, 640, (208, 272)), (640, 480, (272, 208)), (176, 320, (176, 320)),
                                               (375, 1242, (128, 432)), (1000, 1000, (240, 240))])
def test_working_size_follows_the_photo(h, w, want):
    got = working_size_for(h, w, (176, 320))
    assert got == want
    gh, gw = got
    assert gh % 16 == 0 and gw % 16 == 0
    assert abs(gh * gw / (176 * 320) - 1) < 0.12  # about the preset's pixel count
    assert abs(math.log((gw / gh) / (w / h))) < 0.1  # the photo's aspect, not a landscape strip


# ------------------------------------------------------------------------------------------------ intrinsics
def test_photo_camera_sources_and_precedence():
    cam, src = photo_camera(300, 400)
    assert src.startswith("default") and float(cam.fov_y_deg) == pytest.approx(50.0, abs=1e-4)
    cam, src = photo_camera(300, 400, fov=30.0)
    assert src == "--fov" and float(cam.fov_y_deg) == pytest.approx(30.0, abs=1e-4)
    cam, _ = photo_camera(300, 400, focal_px=500.0)
    assert cam.K.tolist() == [[500.0, 0.0, 200.0], [0.0, 500.0, 150.0], [0.0, 0.0, 1.0]]
    cam, _ = photo_camera(300, 400, intrinsics="510,520,190.5,160")
    assert cam.K.tolist() == [[510.0, 0.0, 190.5], [0.0, 520.0, 160.0], [0.0, 0.0, 1.0]]
    cam, src = photo_camera(300, 400, exif_focal_px=321.0, exif_note="EXIF x")
    assert src == "EXIF x" and float(cam.K[0, 0]) == 321.0
    cam, src = photo_camera(300, 400, fov=40.0, exif_focal_px=321.0)  # an explicit option beats EXIF
    assert src == "--fov"
    assert cam.width == 400 and cam.height == 300 and torch.equal(cam.c2w, torch.eye(4))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"fov": 0.0}, "--fov"), ({"fov": 180.0}, "--fov"), ({"fov": -5.0}, "--fov"), ({"fov": float("nan")}, "--fov"),
    ({"focal_px": 0.0}, "--focal-px"), ({"focal_px": -3.0}, "--focal-px"), ({"focal_px": float("inf")}, "--focal-px"),
    ({"intrinsics": "500,500,190"}, "4 numbers"), ({"intrinsics": "a,b,c,d"}, "numbers"),
    ({"intrinsics": "500,500,900,100"}, "principal point"), ({"intrinsics": "0,500,200,150"}, "fx"),
    ({"fov": 30.0, "focal_px": 100.0}, "one of"),
])
def test_photo_camera_errors_are_one_line(kwargs, match):
    with pytest.raises(ConfigError, match=match) as e:
        photo_camera(300, 400, **kwargs)
    assert "\n" not in str(e.value)


def test_parse_intrinsics_files(tmp_path):
    (tmp_path / "k.json").write_text(json.dumps({"fx": 1.5, "fy": 2.5, "cx": 3.5, "cy": 4.5}))
    assert parse_intrinsics(str(tmp_path / "k.json")) == (1.5, 2.5, 3.5, 4.5)
    (tmp_path / "K.json").write_text(json.dumps({"K": [[10, 0, 5], [0, 11, 6], [0, 0, 1]]}))
    assert parse_intrinsics(str(tmp_path / "K.json")) == (10, 11, 5, 6)
    (tmp_path / "k.txt").write_text("577.59 0 318.9 0\n0 578.7 242.7 0\n0 0 1 0\n0 0 0 1\n")  # ScanNet 4x4
    assert parse_intrinsics(str(tmp_path / "k.txt")) == (577.59, 578.7, 318.9, 242.7)
    (tmp_path / "skew.txt").write_text("10 1 5\n0 11 6\n0 0 1\n")
    with pytest.raises(ConfigError, match="skew"):
        parse_intrinsics(str(tmp_path / "skew.txt"))
    with pytest.raises(ConfigError, match="no such file"):
        parse_intrinsics(str(tmp_path / "missing.json"))


def _jpeg_with_exif(path, w, h, tags: dict[int, object]) -> None:
    exif = Image.Exif()
    ifd = exif.get_ifd(0x8769)
    ifd.update(tags)
    Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(path, exif=exif)


def test_exif_focal_length(tmp_path):
    _jpeg_with_exif(tmp_path / "a.jpg", 400, 300, {0xA405: 26})
    f, note = exif_focal_px(tmp_path / "a.jpg", 400, 300)
    assert f == pytest.approx(26 / FULL_FRAME_DIAGONAL_MM * 500.0) and "FocalLengthIn35mmFilm" in note
    # FocalLength 4.2 mm, 1000 pixels per cm on the sensor, recorded at 800x600, loaded at 400x300
    _jpeg_with_exif(tmp_path / "b.jpg", 400, 300, {0x920A: 4.2, 0xA20E: 1000.0, 0xA210: 3, 0xA002: 800, 0xA003: 600})
    f, note = exif_focal_px(tmp_path / "b.jpg", 400, 300)
    assert f == pytest.approx(4.2 * 100.0 * 0.5) and "FocalLength" in note
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "plain.png")
    assert exif_focal_px(tmp_path / "plain.png", 40, 30) is None


# ------------------------------------------------------------------------------------------------ Lyra-2 npz
def _lyra2_npz(path, n=5, with_size=True):
    c2w = gen3c_trajectory("right", default_camera(240, 320), 3.0, n, 0.5).c2w.numpy().astype(np.float64)
    c2w[:, :3, 3] += [1.0, 2.0, 3.0]  # not at the origin: the path is re-expressed relative to its first camera
    K = np.tile(np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]]), (n, 1, 1))
    arrays = {"w2c": np.linalg.inv(c2w), "intrinsics": K}
    if with_size:
        arrays.update(image_height=np.array(240), image_width=np.array(320))
    np.savez(path, **arrays)
    return c2w, K


def test_lyra2_npz_is_read(tmp_path):
    c2w, K = _lyra2_npz(tmp_path / "trajectory.npz")
    cams = load_camera_path(tmp_path / "trajectory.npz")
    assert cams.shape == (5,) and (cams.width, cams.height) == (320, 240)
    assert np.allclose(cams.c2w.numpy(), c2w, atol=1e-5) and np.allclose(cams.K.numpy(), K)
    _lyra2_npz(tmp_path / "nosize.npz", with_size=False)
    assert (load_camera_path(tmp_path / "nosize.npz").width, load_camera_path(tmp_path / "nosize.npz").height) == \
        (320, 240)  # twice the principal point


@pytest.mark.parametrize("case", ["missing", "shape", "pickle", "text", "notrigid"])
def test_lyra2_npz_errors(tmp_path, case):
    p = tmp_path / "bad.npz"
    if case == "missing":
        np.savez(p, w2c=np.tile(np.eye(4), (3, 1, 1)))
    elif case == "shape":
        np.savez(p, w2c=np.zeros((3, 2, 2)), intrinsics=np.tile(np.eye(3), (3, 1, 1)))
    elif case == "pickle":
        np.savez(p, w2c=np.array([{"a": 1}], dtype=object), intrinsics=np.eye(3))
    elif case == "text":
        p.write_text("not a zip at all\n")
    else:
        w2c = np.tile(np.eye(4), (3, 1, 1))
        w2c[1, :3, :3] *= 2.0
        np.savez(p, w2c=w2c, intrinsics=np.tile(np.eye(3) * [100, 100, 1], (3, 1, 1)))
    with pytest.raises(FormatError) as e:
        load_camera_path(p)
    assert "\n" not in str(e.value) and "utf-8" not in str(e.value).lower()


def test_relative_and_resampled_path():
    path = gen3c_trajectory("left", default_camera(48, 80), 3.0, 9, 0.5)
    shifted = Cameras(path.K, torch.tensor([[1.0, 0, 0, 5], [0, 1, 0, 6], [0, 0, 1, 7], [0, 0, 0, 1]]) @ path.c2w,
                      80, 48)
    rel = relative_path(shifted)
    assert torch.allclose(rel.c2w, path.c2w, atol=1e-5)
    out = resample_path(rel, 17)
    assert out.shape == (17,)
    assert torch.allclose(out.c2w[0], rel.c2w[0], atol=1e-5) and torch.allclose(out.c2w[-1], rel.c2w[-1], atol=1e-5)
    assert torch.allclose(out.c2w[2], rel.c2w[1], atol=1e-5)  # 17 from 9: every other frame is an original one
    mid = out.c2w[1, :3, 3]
    assert torch.allclose(mid, 0.5 * (rel.c2w[0, :3, 3] + rel.c2w[1, :3, 3]), atol=1e-5)
    R = out.c2w[:, :3, :3]
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3).expand(17, 3, 3), atol=1e-5)


# ------------------------------------------------------------------------------------------------ pipeline
@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from lyra.pipeline import ScenePipeline
    from lyra.student import LatentDecoder, decoder_config

    torch.manual_seed(0)
    cfg = decoder_config("tiny")
    folder = LatentDecoder(cfg).save_pretrained(tmp_path_factory.mktemp("s") / "student",
                                                {"preset": "tiny", "tokenizer": "tiny", "single_view": False})
    return ScenePipeline.from_preset("tiny", student=folder, device="cpu")


def test_user_path_is_added_to_the_six(pipe, tmp_path):
    c2w, _ = _lyra2_npz(tmp_path / "trajectory.npz", n=5)
    image = torch.rand(3, 96, 160, generator=torch.Generator().manual_seed(0))
    scene = pipe(image, seed=0, steps=1, size=SIZE, trajectory=tmp_path / "trajectory.npz", progress=False,
                 input_resolution=0)  # the latent head's Gaussians alone: the release's count
    assert scene.cameras.shape == (7, 17)
    assert scene.names == (*TRAJECTORY_NAMES, "trajectory")
    assert len(scene.gaussians) == int(7 * 17 * 6 * 10 * (1.0 - 0.8))  # the release's pruning arithmetic
    user = scene.cameras[6]
    assert torch.allclose(user.c2w[0], torch.eye(4), atol=1e-5)  # its first camera is the input view
    rel_last = np.linalg.inv(c2w[0]) @ c2w[-1]
    assert np.allclose(user.c2w[-1].numpy(), rel_last, atol=1e-4)
    # the input camera takes the path's intrinsics (300 px at 320x240 → fitted to 80x48: scale 0.25 after the crop)
    fx = scene.metadata["camera"]["fx"]
    assert fx == pytest.approx(300.0 * 80 / 320, rel=1e-4) and "trajectory.npz" in scene.metadata["camera"]["source"]
    assert torch.allclose(scene.cameras.K[0, 0], scene.cameras.K[6, 0])


def test_portrait_photo_keeps_its_aspect_and_camera(pipe):
    portrait = torch.rand(3, 1920 // 8, 1080 // 8, generator=torch.Generator().manual_seed(1))  # 135 × 240 (W × H)
    cam, _ = photo_camera(240, 135, focal_px=150.0)
    scene = pipe(portrait, seed=0, steps=1, camera=cam, progress=False, camera_source="--focal-px")
    assert scene.metadata["size"] == [320, 176]  # portrait working size, not a landscape strip
    assert scene.image.shape == (3, 320, 176)
    m = scene.metadata["camera"]
    s = max(176 / 135, 320 / 240)  # cover-scale of the fit (then 2 columns are cropped on each side)
    assert m["fx"] == pytest.approx(150.0 * s, rel=2e-2) and m["source"] == "--focal-px"
    assert m["cx"] == pytest.approx(88.0, abs=0.5) and m["cy"] == pytest.approx(160.0, abs=0.5)


def test_generate_reads_exif_and_cli_errors(tmp_path, capsys):
    from lyra.pipeline import generate

    _jpeg_with_exif(tmp_path / "photo.jpg", 160, 96, {0xA405: 35})
    with Image.open(tmp_path / "photo.jpg") as im:  # texture the photo (the EXIF stays)
        exif = im.getexif()
    Image.fromarray((np.random.default_rng(0).random((96, 160, 3)) * 255).astype(np.uint8)).save(
        tmp_path / "photo.jpg", exif=exif)
    scene = generate(tmp_path / "photo.jpg", steps=1, size=SIZE, device="cpu", progress=False)
    m = scene.metadata["camera"]
    assert "FocalLengthIn35mmFilm 35" in m["source"]
    assert m["fx"] == pytest.approx(35 / FULL_FRAME_DIAGONAL_MM * math.hypot(160, 96) * 0.5, rel=1e-3)
    plain = generate(tmp_path / "photo.jpg", steps=1, size=SIZE, device="cpu", progress=False, exif=False)
    assert plain.metadata["camera"]["fov_y_deg"] == pytest.approx(50.0, abs=1e-3)
    out = str(tmp_path / "s.ply")
    for extra, match in ((["--fov", "0"], "--fov"), (["--focal-px", "-2"], "--focal-px"),
                         (["--intrinsics", "1,2"], "4 numbers"), (["--trajectory-only"], "--trajectory")):
        assert main(["generate", str(tmp_path / "photo.jpg"), "-o", out, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    with pytest.raises(SystemExit) as e:  # argparse: one of the three
        main(["generate", str(tmp_path / "photo.jpg"), "-o", out, "--fov", "40", "--focal-px", "100"])
    assert e.value.code == 2
    assert not (tmp_path / "s.ply").exists()


def test_trajectory_file_with_legacy_json(pipe, tmp_path):
    cams = gen3c_trajectory("left", default_camera(96, 160), 3.0, 9, 0.5)
    (tmp_path / "path.json").write_text(json.dumps(camera_path_dict(cams)))
    scene = pipe(torch.rand(3, 48, 80), seed=0, steps=1, size=SIZE, trajectory=tmp_path / "path.json",
                 progress=False)
    assert scene.cameras.shape == (7, 17) and scene.names[-1] == "path"
    assert torch.allclose(scene.cameras.c2w[6, -1], cams.c2w[-1], atol=1e-5)
