"""``lyra.pipeline``: image → Scene with the shipped tiny teacher and a random tiny student, at 48 × 80."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

import lyra.pipeline as lp
from lyra.errors import ConfigError, InputFileError, OutputPathError, WeightsError
from lyra.gaussians.io import load_gaussians
from lyra.geometry.trajectories import camera_path_dict, gen3c_trajectory
from lyra.inputs import default_camera
from lyra.pipeline import PRUNE_RATIO, Scene, ScenePipeline, StudentWeightsMissing, generate

SIZE = (48, 80)  # latents 6 × 10 per frame
PER_PIXEL = 6 * 17 * (48 // 8) * (80 // 8)  # V · T · h · w Gaussians before pruning = 6120


def kept(n: int) -> int:
    """Gaussians kept by pruning to 20 % with the release's arithmetic (``int(N · (1 − 0.8))``)."""
    return int(n * (1.0 - PRUNE_RATIO))


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A randomly initialised tiny student exported like `lyra train student` does."""
    from lyra.student import LatentDecoder, decoder_config

    torch.manual_seed(0)
    cfg = decoder_config("tiny")
    folder = tmp_path_factory.mktemp("s") / "student_tiny"
    return LatentDecoder(cfg).save_pretrained(folder,
                          {"preset": "tiny", "tokenizer": "tiny", "single_view": False})


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    """A 48 × 88 photo: wider than 80:48, so it is centre-cropped to 48 × 80."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:88]
    a = np.stack([xx * 2.8, yy * 5.0, 128 + 40 * np.sin(xx / 5.0)], -1) + rng.normal(0, 8, (48, 88, 3))
    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def pipe(student):
    """The pipeline without input-view Gaussians (the latent head's output alone, Lyra's arithmetic); the input-view
    Gaussians have their own tests below."""
    p = ScenePipeline.from_preset("tiny", student=student, device="cpu")
    assert p.input_resolution == 1024  # the tiny preset's default
    p.input_resolution = 0
    return p


@pytest.fixture(scope="module")
def scene0(pipe, image_file):
    return pipe(str(image_file), seed=0, steps=1, size=SIZE, progress=False)


def test_generate_end_to_end(student, image_file, capsys):
    scene = generate(str(image_file), student=student, size=SIZE, steps=1, seed=0, device="cpu", input_resolution=0)
    err = capsys.readouterr().err
    assert isinstance(scene, Scene)
    assert scene.metadata["gaussians_before_prune"] == PER_PIXEL == 6120
    assert len(scene.gaussians) == kept(PER_PIXEL) == 1223  # 6120 · 0.2 = 1224 → 1223 (release arithmetic)
    assert scene.cameras.shape == (6, 17) and (scene.cameras.height, scene.cameras.width) == SIZE
    m = scene.metadata
    assert (m["preset"], m["seed"], m["steps"], m["size"], m["input_size"]) == ("tiny", 0, 1, [48, 80], [48, 88])
    assert m["fit"] == "resized 88x48 → 80x48 (centre-crop 80x48)"
    assert m["latents"] == [6, 16, 3, 6, 10]
    stages = ["load", "inputs", "depth", "trajectories", "warp_encode", "denoise", "plucker", "student", "gaussians"]
    assert list(m["timings_s"]) == stages + ["total"]
    assert all(v >= 0 for v in m["timings_s"].values())
    assert m["timings_s"]["total"] >= sum(m["timings_s"][k] for k in stages) - 0.05
    for s in stages:  # one progress line per stage, on stderr
        assert any(line.split()[:1] == [s] for line in err.splitlines()), s
    digest = hashlib.sha256((student / "model.safetensors").read_bytes()).hexdigest()
    assert m["weights"]["student"]["model.safetensors"] == digest
    assert set(m["weights"]) == {"teacher", "tokenizer", "student", "depth"}
    assert scene.videos is None  # the RGB decoder is not run by default
    g = scene.gaussians
    assert torch.isfinite(g.means).all() and (g.opacities > 0).all() and (g.opacities < 1).all()


def test_determinism_per_seed(pipe, image_file, scene0):
    again = pipe(str(image_file), seed=0, steps=1, size=SIZE, progress=False)
    assert torch.equal(again.gaussians.means, scene0.gaussians.means)
    assert torch.equal(again.gaussians.colors, scene0.gaussians.colors)
    other = pipe(str(image_file), seed=1, steps=1, size=SIZE, progress=False)
    assert len(other.gaussians) == len(scene0.gaussians)
    assert not torch.allclose(other.gaussians.means, scene0.gaussians.means)
    assert not torch.allclose(other.cameras.c2w, scene0.cameras.c2w)  # trajectory distances differ too


def test_pruning_keeps_the_most_opaque(pipe, image_file, scene0):
    full = pipe(str(image_file), seed=0, steps=1, size=SIZE, progress=False, prune_ratio=None)
    assert len(full.gaussians) == PER_PIXEL
    top = full.gaussians.opacities.sort(descending=True).values[:len(scene0.gaussians)]
    assert torch.allclose(scene0.gaussians.opacities.sort(descending=True).values, top)
    # the delivered set is the release's arithmetic (LatentDecoder.to_gaussians), in the decoder's order, and the
    # helper the video run uses gives exactly it
    from lyra.pipeline_parts import pruned_on_cpu

    assert len(scene0.gaussians) == kept(PER_PIXEL)
    assert torch.equal(pruned_on_cpu(full.gaussians, PRUNE_RATIO).means, scene0.gaussians.means)
    assert torch.equal(pruned_on_cpu(full.gaussians, 0.0).means, full.gaussians.means)
    with pytest.raises(ConfigError, match="prune_ratio"):
        pruned_on_cpu(full.gaussians, 1.0)


def test_save_formats_and_read_back(scene0, tmp_path):
    p = scene0.save(tmp_path / "scene.ply")
    back = load_gaussians(p)
    g = scene0.gaussians
    assert len(back) == len(g)
    for name in ("means", "quats", "scales", "opacities", "colors"):
        assert torch.allclose(getattr(back, name), getattr(g, name), atol=1e-5, rtol=1e-5), name
    for ext in (".splat", ".spz"):
        assert len(load_gaussians(scene0.save(tmp_path / f"scene{ext}"))) == len(g)
    with pytest.raises(OutputPathError, match="extension"):
        scene0.save(tmp_path / "scene.obj")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["scene.ply", "scene.splat", "scene.spz"]
    cams = json.loads(scene0.save_cameras(tmp_path / "cams.json").read_text())
    assert (cams["format"], cams["width"], cams["height"], len(cams["frames"])) == ("lyra-camera-path", 80, 48, 102)
    assert np.allclose(cams["frames"][17]["c2w"], scene0.cameras.c2w[1, 0].numpy())


def test_trajectory_file_and_decoded_videos(pipe, image_file, tmp_path):
    cams = gen3c_trajectory("left", default_camera(96, 160), 3.0, 9, 0.5)  # 2× the working size: gets resized
    (tmp_path / "path.json").write_text(json.dumps(camera_path_dict(cams)))
    scene = pipe(str(image_file), seed=0, steps=1, size=SIZE, trajectory=tmp_path / "path.json", progress=False,
                 decode_videos=True, replace_trajectories=True)  # the file replaces the six (else it is added)
    assert scene.cameras.shape == (1, 9) and scene.names == ("path",)
    assert scene.metadata["gaussians_before_prune"] == 9 * 6 * 10
    assert len(scene.gaussians) == kept(540) == 107  # 540 · 0.2 = 108 is whole → one fewer
    assert torch.allclose(scene.cameras.K[0, 0], cams.resize(80, 48).K[0])
    assert scene.videos is not None and tuple(scene.videos.shape) == (1, 9, 3, 48, 80)
    assert 0.0 <= float(scene.videos.min()) and float(scene.videos.max()) <= 1.0
    assert "decode_videos" in scene.metadata["timings_s"]
    (tmp_path / "bad.json").write_text(json.dumps(camera_path_dict(cams[:4])))
    with pytest.raises(ConfigError, match="1 \\+ 8k"):
        pipe(str(image_file), steps=1, size=SIZE, trajectory=tmp_path / "bad.json", progress=False,
             replace_trajectories=True)


def test_progress_callback_and_bad_options(pipe, image_file):
    seen: list[str] = []
    pipe(torch.rand(3, 48, 80), steps=1, size=SIZE, progress=lambda stage, s: seen.append(stage))
    assert seen == ["inputs", "depth", "trajectories", "warp_encode", "denoise", "plucker", "student", "gaussians"]
    with pytest.raises(ConfigError, match="multiples of 16"):
        pipe(str(image_file), size=(50, 80), progress=False)
    with pytest.raises(ConfigError, match="steps"):
        pipe(str(image_file), size=SIZE, steps=0, progress=False)


def test_missing_student_says_how_to_get_it(monkeypatch, tmp_path, image_file):
    monkeypatch.setattr(lp, "student_weights_dir", lambda preset="tiny": tmp_path / "student_tiny")
    with pytest.raises(StudentWeightsMissing, match="lyra train student.*--student DIR"):
        generate(str(image_file), size=SIZE, steps=1, device="cpu", progress=False)
    with pytest.raises(StudentWeightsMissing, match="no such file"):
        generate(str(image_file), student=tmp_path / "nope", device="cpu", progress=False)
    with pytest.raises(WeightsError, match="teacher/"):
        generate(str(image_file), preset="official", weights=tmp_path, device="cpu", progress=False)
    (tmp_path / "teacher").mkdir()
    with pytest.raises(StudentWeightsMissing, match="lyra_static.pt"):
        generate(str(image_file), preset="official", weights=tmp_path, device="cpu", progress=False)
    with pytest.raises(WeightsError, match="--weights DIR"):
        generate(str(image_file), preset="official", device="cpu", progress=False)


def test_a_student_of_other_latent_channels_is_refused_at_load(tmp_path):
    """A static student built for 8 latent channels next to the tiny teacher's 16-channel tokenizer: one line at
    load time, before any image runs."""
    from dataclasses import replace

    from lyra.student import LatentDecoder, decoder_config

    folder = LatentDecoder(replace(decoder_config("tiny"), latent_channels=8)).save_pretrained(
        tmp_path / "c8", {"preset": "tiny", "tokenizer": "tiny", "single_view": False})
    with pytest.raises(WeightsError, match=r"^the student reads 8-channel latents, the 'tiny' teacher's tokenizer "
                                           r"\(.*c8\) makes 16$"):
        ScenePipeline.from_preset("tiny", student=folder, device="cpu")


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "dir"])
def test_bad_image_fails_before_loading(tmp_path, kind, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("models must not be loaded for a bad input")

    monkeypatch.setattr(ScenePipeline, "from_preset", boom)
    path = tmp_path / "in.png"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not an image")
    elif kind == "dir":
        path.mkdir()
    with pytest.raises(InputFileError):
        generate(str(path), progress=False)


def test_low_memory_mode_same_scene_and_stage_order(student, image_file, pipe, monkeypatch):
    """low_memory: each model is resident only for its stage, in the order depth net → tokenizer (warps) →
    denoiser → tokenizer (Plücker) → student; the Gaussians equal the plain mode's up to float rounding."""
    import lyra.lowmem
    import lyra.teacher.pipeline as tp

    low = ScenePipeline.from_preset("tiny", student=student, device="cpu", low_memory=True)
    low.input_resolution = 0
    assert low.low_memory and low.teacher.low_memory and low.device == torch.device("cpu")
    assert low.teacher.trajectory_batch == 1 and low.teacher.tokenizer.chunk_elements is not None
    assert not pipe.low_memory and pipe.teacher.tokenizer.chunk_elements is None
    stages: list[str] = []
    real = lyra.lowmem.resident

    def spy(module, device):
        if device is not None:
            names = {id(low.teacher.tokenizer): "tokenizer", id(low.teacher.denoiser): "denoiser",
                     id(low.student): "student", id(low.teacher.depth_estimator): "depth"}
            stages.append(names.get(id(module), "?"))
        return real(module, device)

    monkeypatch.setattr(tp, "resident", spy)
    monkeypatch.setattr(lyra.lowmem, "resident", spy)
    a = pipe(str(image_file), seed=2, steps=1, size=SIZE, progress=False, prune_ratio=None)
    assert stages == []
    b = low(str(image_file), seed=2, steps=1, size=SIZE, progress=False, prune_ratio=None)
    assert stages == ["depth", "tokenizer", "denoiser", "tokenizer", "student"]
    assert list(a.metadata["timings_s"]) == list(b.metadata["timings_s"])
    assert (a.metadata["low_memory"], b.metadata["low_memory"]) == (False, True)
    assert a.metadata["peak_gib"] is None and b.metadata["peak_gib"] is None  # CPU: no GPU memory to report
    assert set(b.metadata["transfer_s"]) == {"depth", "warp_encode", "denoise", "plucker", "student"}
    ga, gb = a.gaussians, b.gaussians
    assert len(ga) == len(gb) == PER_PIXEL
    for name in ("means", "quats", "scales", "opacities", "colors"):
        x, y = getattr(ga, name), getattr(gb, name)  # measured: max |Δ| / max |x| ≤ 3e-5 (quaternions)
        assert float((x - y).abs().max()) <= 1e-4 * float(x.abs().max()), name
    pruned = low(str(image_file), seed=2, steps=1, size=SIZE, progress=False)
    assert len(pruned.gaussians) == kept(PER_PIXEL)


def test_input_view_gaussians_by_default(student, image_file, pipe):
    """The tiny preset's default: one Gaussian per pixel of the photo (its crop to the working aspect, up to
    input_resolution on the long side) in front of the latent head's Gaussians that do not duplicate them; the input
    view then renders the photo far more faithfully than the latent head alone."""
    from lyra.eval.baselines import render_views
    from lyra.eval.metrics import psnr
    from lyra.inputs import load_image

    latent = pipe(str(image_file), seed=0, steps=1, size=SIZE, progress=False)
    seen: list[str] = []
    full = pipe(str(image_file), seed=0, steps=1, size=SIZE, input_resolution=1024,
                progress=lambda stage, s: seen.append(stage))
    assert seen[-1] == "input_view"
    iv = full.metadata["input_view"]
    assert iv["size"] == [48, 80]  # never above the photo's own resolution (48 × 88 cropped to 48 × 80)
    assert full.latent_start == iv["gaussians"] == 48 * 80  # the estimate has no sky here
    assert iv["latent_kept"] + iv["latent_dropped"] == len(latent.gaussians)
    assert len(full.gaussians) == full.metadata["gaussians"] == 48 * 80 + iv["latent_kept"]
    assert torch.equal(full.gaussians.means[full.latent_start:], latent.gaussians.means[
        torch.isin(latent.gaussians.means[:, 0], full.gaussians.means[full.latent_start:, 0])])
    photo = load_image(str(image_file))[:, :, 4:84]  # the centre crop the pipeline fits
    cam = full.input_camera.reshape(1)
    ours = render_views(full.gaussians, cam, backend="torch").rgb[0]
    alone = render_views(latent.gaussians, cam, backend="torch").rgb[0]
    assert float(psnr(ours, photo)) > 30.0 > float(psnr(alone, photo)) + 5.0
    # a larger photo: the input-view Gaussians follow it up to the cap
    big = pipe(torch.rand(3, 96, 176), seed=0, steps=1, size=SIZE, input_resolution=120, progress=False)
    assert big.metadata["input_view"]["size"] == [72, 120] and big.latent_start <= 72 * 120
    with pytest.raises(ConfigError, match="input_resolution"):
        pipe(str(image_file), steps=1, size=SIZE, input_resolution=-1, progress=False)


def test_quantized_denoiser_and_recorded_paths(student, image_file, scene0):
    """Issue 22: the 8-bit memory mode changes the scene only a little, and the metadata say what ran."""
    m0 = scene0.metadata
    assert m0["denoiser_weights"] == "float32" and m0["cpu_threads"] == torch.get_num_threads()
    assert m0["student_path"] == {"ssd": "torch", "attention": "sdpa"}
    q = ScenePipeline.from_preset("tiny", student=student, device="cpu", quantize="int8")
    assert q.quantized is not None and q.quantized.layers > 0
    scene = q(str(image_file), seed=0, steps=1, size=SIZE, progress=False, prune_ratio=None, input_resolution=0)
    full = ScenePipeline.from_preset("tiny", student=student, device="cpu")(str(image_file), seed=0, steps=1,
                                                                             size=SIZE, progress=False,
                                                                             prune_ratio=None, input_resolution=0)
    assert scene.metadata["denoiser_weights"] == "int8"
    a, b = scene.gaussians.means, full.gaussians.means
    err = float((a - b).norm() / b.norm())
    assert 0 < err < 0.05
    with pytest.raises(ConfigError, match="quantisation"):
        ScenePipeline.from_preset("tiny", student=student, device="cpu", quantize="int4")
    assert m0["denoiser_attention"] == "diffusers" and scene.metadata["denoiser_attention"] == "diffusers"
