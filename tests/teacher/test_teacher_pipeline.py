"""TeacherPipeline: determinism per seed, closed forms with stub velocities, latents round trips, cameras."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.errors import ConfigError, WeightsError
from lyra.geometry.cameras import Cameras, look_at
from lyra.geometry.trajectories import TRAJECTORY_NAMES, sample_gen3c_trajectories
from lyra.inputs import default_camera
from lyra.seeds import mix_seed
from lyra.teacher import TeacherOutput, TeacherPipeline
from lyra.teacher.denoiser import TeacherDenoiser
from lyra.teacher.pipeline import center_depth, initial_noise
from lyra.tokenizer import Tokenizer

H, W, T = 48, 80, 9  # micro-sized: 6 × 10 latent cells, 2 latent frames


@pytest.fixture(scope="module")
def pipe() -> TeacherPipeline:
    tok = Tokenizer.from_preset("tiny", max_batch=6)
    return TeacherPipeline(TeacherDenoiser.from_config("tiny", seed=0), tok, None, num_frames=T)


def scene(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random image and a smooth depth map (a slanted plane 2..4 m with a box in front)."""
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(3, H, W, generator=g)
    depth = torch.linspace(2.0, 4.0, W).expand(H, W).clone()
    depth[16:32, 30:50] = 1.5
    return img, depth


def test_same_seed_is_bit_identical_and_seeds_differ(pipe):
    img, depth = scene()
    a = pipe(img, depth, seed=3, steps=2, progress=False)
    b = pipe(img, depth, seed=3, steps=2, progress=False)
    c = pipe(img, depth, seed=4, steps=2, progress=False)
    assert a.latents.shape == (6, 16, 2, H // 8, W // 8)
    assert torch.equal(a.latents, b.latents) and torch.equal(a.cameras.c2w, b.cameras.c2w)
    assert not torch.equal(a.latents, c.latents)
    assert not torch.equal(a.cameras.c2w, c.cameras.c2w)  # the seed draws the trajectory distances too
    assert a.names == TRAJECTORY_NAMES and (a.seed, a.steps, a.guidance) == (3, 2, 1.0)
    assert set(a.timings) == {"depth", "trajectories", "warp_encode", "denoise"}
    assert a.conditions.rgb.shape == (6, T, 3, H, W) and a.conditions.mask.shape == (6, T, H, W)


def test_zero_velocity_returns_the_seeded_noise(pipe, monkeypatch):
    """v ≡ 0: Euler leaves the starting noise unchanged — it is the documented CPU normal draw."""
    monkeypatch.setattr(pipe.denoiser, "forward", lambda x, t, cond: torch.zeros_like(x))
    img, depth = scene()
    out = pipe(img, depth, seed=7, steps=3, progress=False)
    noise = torch.randn(out.latents.shape, generator=torch.Generator().manual_seed(mix_seed(7, 101)))
    assert torch.equal(out.latents, noise) and torch.equal(initial_noise(out.latents.shape, 7), noise)


@pytest.mark.parametrize("steps", [1, 5])
def test_oracle_velocity_towards_the_warp_latents(pipe, monkeypatch, steps):
    """v = (x − c)/t is the exact rectified-flow velocity of data c: Euler lands on c for any step count,
    so a teacher that fully trusts the warp returns the warp's latents, and decodes to the tokenizer's
    round trip of the warped videos."""
    seen_t = []

    def oracle(x, t, cond):
        seen_t.append(float(t[0]))
        return (x - cond.latents) / t.reshape(-1, 1, 1, 1, 1)

    monkeypatch.setattr(pipe.denoiser, "forward", oracle)
    img, depth = scene(1)
    out = pipe(img, depth, seed=0, steps=steps, progress=False)
    assert seen_t == pytest.approx([1.0 - k / steps for k in range(steps)])
    assert torch.allclose(out.latents, out.conditions.latents, atol=1e-5)
    video = pipe.decode(out)
    assert video.shape == (6, T, 3, H, W) and "decode" in out.timings
    rt = pipe.tokenizer.decode(pipe.tokenizer.encode(out.conditions.rgb))
    assert torch.allclose(video, rt, atol=1e-4)


def test_raw_normalised_round_trip_and_file(pipe, tmp_path):
    img, depth = scene()
    out = pipe(img, depth, seed=1, steps=1, progress=False)
    raw = out.raw_latents
    assert torch.allclose(raw, pipe.tokenizer.denormalize(out.latents), atol=1e-6)
    assert torch.allclose(out.normalize(raw), out.latents, atol=1e-5)
    mean, std = pipe.tokenizer.latent_stats(2)
    assert torch.equal(out.latents_mean, mean.reshape(16, 2)) and torch.equal(out.latents_std, std.reshape(16, 2))
    path = out.save(tmp_path / "lat.safetensors")
    back = TeacherOutput.load(path)
    for name in ("latents", "latents_mean", "latents_std", "image", "depth"):
        assert torch.equal(getattr(back, name), getattr(out, name)), name
    assert torch.equal(back.cameras.c2w, out.cameras.c2w) and torch.equal(back.cameras.K, out.cameras.K)
    assert torch.equal(back.input_camera.c2w, out.input_camera.c2w)
    assert torch.equal(back.conditions.mask_latents, out.conditions.mask_latents)
    assert (back.names, back.seed, back.steps, back.center_depth) == (out.names, 1, 1, out.center_depth)
    assert torch.equal(back.raw_latents, out.raw_latents)


def test_trajectories_start_at_the_input_camera_and_follow_gen3c(pipe):
    img, depth = scene()
    out = pipe(img, depth, seed=0, steps=1, progress=False)
    cam = default_camera(H, W)
    assert torch.equal(out.input_camera.c2w, cam.c2w) and torch.equal(out.input_camera.K, cam.K)
    for v in range(6):
        assert torch.allclose(out.cameras.c2w[v, 0], cam.c2w, atol=1e-6)
        assert torch.allclose(out.cameras.K[v, 0], cam.K)
    # a posed input camera: every trajectory still starts there
    eye = torch.tensor([1.0, -0.5, 2.0])
    posed = Cameras.from_fov(60.0, W, H, look_at(eye, eye + torch.tensor([0.3, 0.0, 1.0])))
    out2 = pipe(img, depth, camera=posed, seed=0, steps=1, progress=False,
                distances=[0.25, 0.25, 0.15, 0.35, 0.35, 0.5])
    assert torch.allclose(out2.cameras.c2w[:, 0], posed.c2w.expand(6, 4, 4), atol=1e-5)
    # the centre depth is the median of the centre window; the distances are the ones given
    assert out2.center_depth == pytest.approx(center_depth(depth))
    want = sample_gen3c_trajectories(posed, out2.center_depth, T, distances=[0.25, 0.25, 0.15, 0.35, 0.35, 0.5])
    assert torch.allclose(out2.cameras.c2w, want.c2w, atol=1e-6)
    # left trajectory: the last camera moved (T−1)/T · d · c to the left (-x of the input camera)
    step = out2.cameras.centers[0, -1] - posed.centers
    assert float(step.norm()) == pytest.approx((T - 1) / T * 0.25 * out2.center_depth, rel=1e-4)


def test_given_trajectories(pipe):
    img, depth = scene()
    eye = torch.zeros(2, T, 3)
    eye[0, :, 0] = torch.linspace(0, 0.3, T)
    eye[1, :, 1] = torch.linspace(0, -0.2, T)
    traj = Cameras.from_fov(50.0, W, H, look_at(eye, eye + torch.tensor([0.0, 0.0, 1.0])))
    out = pipe(img, depth, trajectories=traj, names=("a", "b"), seed=0, steps=1, progress=False)
    assert out.latents.shape[0] == 2 and out.names == ("a", "b") and math.isnan(out.center_depth)
    assert torch.equal(out.input_camera.c2w, traj.c2w[0, 0])
    # frame 0 is the input view: the warp there is the image itself wherever it is valid
    m = out.conditions.mask[0, 0]
    assert float(m.float().mean()) > 0.9
    assert torch.allclose(out.conditions.rgb[0, 0][:, m], img[:, m], atol=1e-4)


def test_center_depth_rules():
    d = torch.full((16, 16), 3.0)
    d[6:10, 6:10] = 2.0  # the centre window (middle quarter) is 4 × 4 pixels
    assert center_depth(d) == 2.0
    d[6:10, 6:10] = math.inf  # centre is sky: median of the whole map's finite pixels
    assert center_depth(d) == 3.0
    with pytest.raises(ConfigError):
        center_depth(torch.full((8, 8), math.inf))


def test_bad_sizes_and_settings(pipe):
    img, depth = scene()
    with pytest.raises(ConfigError, match="multiples of 16"):
        pipe(img[:, :40], depth[:40], steps=1, progress=False)
    with pytest.raises(ConfigError, match="positional grid"):
        pipe.check_size(16 * 80, 320, 17)
    with pytest.raises(ConfigError, match="1 \\+ 8k"):
        pipe(img, depth, num_frames=10, steps=1, progress=False)
    with pytest.raises(ConfigError, match="steps"):
        pipe(img, depth, steps=0, progress=False)
    with pytest.raises(ConfigError, match="depth"):
        pipe(img, steps=1, progress=False)  # no estimator and no depth
    with pytest.raises(ConfigError, match="does not match"):
        pipe(img, depth[:, :64], steps=1, progress=False)


def test_from_preset_loads_saved_weights_and_reports_missing(tmp_path, monkeypatch):
    folder = tmp_path / "teacher"
    TeacherDenoiser.from_config("tiny", seed=1).save_pretrained(folder, torch.float16)
    p = TeacherPipeline.from_preset("tiny", weights=folder, depth="tiny")
    assert p.num_frames == 17 and p.working_size == (176, 320) and p.depth_estimator is not None
    info = p.describe()
    assert set(info["weights_sha256"]) >= {"config.json", "diffusion_pytorch_model.safetensors"}
    img, _ = scene()
    out = p(img, num_frames=T, seed=0, steps=1, progress=False)  # depth from the tiny depth net
    assert out.depth.shape == (H, W) and bool((out.depth > 0).all())

    import lyra.teacher.pipeline as tp

    monkeypatch.setattr(tp, "teacher_weights_dir", lambda preset="tiny": tmp_path / "absent")
    with pytest.raises(WeightsError, match="lyra.train.recipes.teacher"):
        TeacherPipeline.from_preset("tiny")
    with pytest.raises(WeightsError, match="save_pretrained"):
        TeacherPipeline.from_preset("tiny", weights=tmp_path / "nowhere")
    with pytest.raises(ConfigError):
        TeacherPipeline.from_preset("huge", weights=folder)


# --------------------------------------------------------------------------- low-memory mode
def test_low_memory_mode_gives_the_same_output(pipe, monkeypatch):
    """Trajectories warped, encoded (chunked tokenizer layers) and sampled one at a time, each model resident
    only during its stage: the warps are bit-identical, latents and decoded videos equal up to float rounding
    (other batch sizes and chunk shapes pick other CPU kernels; measured ≤ 2e-6)."""
    import lyra.teacher.pipeline as tp
    from lyra.lowmem import resident as real_resident

    low = TeacherPipeline(pipe.denoiser, Tokenizer(pipe.tokenizer.vae, max_batch=6), None, num_frames=T)
    assert low.enable_low_memory("cpu", trajectory_batch=1, chunk_elements=1 << 12) is low
    assert low.low_memory and low.tokenizer.chunk_elements == 1 << 12 and low.device == torch.device("cpu")
    assert pipe.tokenizer.chunk_elements is None and not pipe.low_memory  # the plain pipeline is untouched
    stages: list[str] = []

    def spy(module, device):
        names = {id(low.denoiser): "denoiser", id(low.tokenizer): "tokenizer"}
        if device is not None:
            stages.append(names.get(id(module), type(module).__name__))
        return real_resident(module, device)

    monkeypatch.setattr(tp, "resident", spy)
    img, depth = scene(2)
    a = pipe(img, depth, seed=5, steps=2, progress=False)
    assert stages == []  # plain mode: nothing is moved
    b = low(img, depth, seed=5, steps=2, progress=False)
    assert stages == ["tokenizer", "denoiser"]  # depth given: no depth net
    assert torch.equal(a.conditions.rgb, b.conditions.rgb) and torch.equal(a.conditions.mask, b.conditions.mask)
    assert torch.equal(a.conditions.mask_latents, b.conditions.mask_latents)
    assert torch.allclose(a.conditions.latents, b.conditions.latents, atol=1e-5)
    assert torch.allclose(a.latents, b.latents, atol=1e-5) and not torch.equal(a.latents, torch.zeros_like(a.latents))
    assert a.timings.keys() == b.timings.keys() == {"depth", "trajectories", "warp_encode", "denoise"}
    assert (a.profile["low_memory"], b.profile["low_memory"]) == (False, True)
    assert len(a.profile["denoise_groups_s"]) == 1 and len(b.profile["denoise_groups_s"]) == 6
    assert b.profile["peak_gib"] is None and set(b.profile["transfer_s"]) == {"warp_encode", "denoise"}
    va, vb = pipe.decode(a), low.decode(b)
    assert stages[-1] == "tokenizer" and va.shape == vb.shape == (6, T, 3, H, W)
    assert torch.allclose(va, vb, atol=1e-5)
    with pytest.raises(ConfigError, match="trajectory_batch"):
        low.enable_low_memory("cpu", trajectory_batch=0)


def test_warp_conditions_in_groups_of_trajectories(pipe):
    from lyra.teacher.conditioning import warp_conditions

    img, depth = scene(3)
    cam = default_camera(H, W)
    traj = sample_gen3c_trajectories(cam, 3.0, T, distances=[0.25, 0.25, 0.15, 0.35, 0.35, 0.5])
    whole = warp_conditions(img, depth, cam, traj, pipe.tokenizer)
    for batch in (1, 4):
        parts = warp_conditions(img, depth, cam, traj, pipe.tokenizer, trajectory_batch=batch, store_device="cpu")
        assert parts.latents.shape == whole.latents.shape == (6, 16, 2, H // 8, W // 8)
        assert torch.equal(parts.rgb, whole.rgb) and torch.equal(parts.mask, whole.mask)
        assert torch.allclose(parts.latents, whole.latents, atol=1e-5)
    with pytest.raises(ConfigError, match="trajectory_batch"):
        warp_conditions(img, depth, cam, traj, pipe.tokenizer, trajectory_batch=0)


# --------------------------------------------------------------------------- latent channels
def test_a_tokenizer_of_other_latent_channels(tmp_path):
    """An 8-channel tokenizer (random weights) with a denoiser built for 8 channels: the pipeline runs end to end
    (latents and statistics [V, 8, t, h, w] / [8, t], decode); a denoiser and a tokenizer of different channel
    counts are refused in one line, at construction and in from_preset."""
    tok8 = Tokenizer.from_config("tiny", max_batch=6, latent_channels=8).eval()
    den8 = TeacherDenoiser.from_config("tiny", seed=0, latent_channels=8)
    p8 = TeacherPipeline(den8, tok8, None, num_frames=T)
    img, depth = scene()
    out = p8(img, depth, seed=1, steps=1, progress=False)
    assert out.latents.shape == (6, 8, 2, H // 8, W // 8) and out.latents_mean.shape == (8, 2)
    assert torch.allclose(out.normalize(out.raw_latents), out.latents, atol=1e-5)
    assert p8.decode(out).shape == (6, T, 3, H, W)
    with pytest.raises(WeightsError, match="^the teacher reads 16-channel latents, its tokenizer makes 8$"):
        TeacherPipeline(TeacherDenoiser.from_config("tiny"), tok8, None, num_frames=T)
    folder = tmp_path / "teacher8"
    den8.save_pretrained(folder, torch.float16)
    with pytest.raises(WeightsError, match=r"reads 8-channel latents, tokenizer tiny makes 16$"):
        TeacherPipeline.from_preset("tiny", weights=folder, depth=None)
    recorded = tmp_path / "teacher_v2"
    TeacherDenoiser.from_config("tiny").save_pretrained(recorded, torch.float16, tokenizer="tiny_v2")
    with pytest.raises(WeightsError, match=r"reads tokenizer tiny_v2 \(teacher.json\), the 'tiny' preset's is tiny"):
        TeacherPipeline.from_preset("tiny", weights=recorded, depth=None)
    # a teacher trained on another *shipped* tokenizer (teacher.json) gets that one, not the preset's
    block = tmp_path / "teacher_block"
    den96 = TeacherDenoiser.from_config("tiny", latent_channels=96)
    den96.save_pretrained(block, torch.float16, tokenizer="tiny_block")
    pipe = TeacherPipeline.from_preset("tiny", weights=block, depth=None)
    assert pipe.tokenizer.latent_channels == 96
    assert type(pipe.tokenizer.vae).__name__ == "BlockCodeAutoencoder"


def test_a_filled_anchor_teacher_reads_the_filled_warp(pipe, monkeypatch):
    """A denoiser with fills_holes gets conditions encoded from the warp with its holes filled; the kept warped
    videos (composites, metrics) stay the warp itself, black in its holes. Other teachers read the plain warp."""
    from lyra.teacher.conditioning import fill_warp_holes

    filled = TeacherPipeline(TeacherDenoiser.from_config("tiny", seed=0).set_anchor("filled"), pipe.tokenizer, None,
                             num_frames=T)
    oracle = lambda x, t, cond: (x - cond.latents) / t.reshape(-1, 1, 1, 1, 1)  # noqa: E731 - lands on cond.latents
    monkeypatch.setattr(filled.denoiser, "forward", oracle)
    monkeypatch.setattr(pipe.denoiser, "forward", oracle)
    img, depth = scene(2)
    out = filled(img, depth, seed=0, steps=2, progress=False)
    plain = pipe(img, depth, seed=0, steps=2, progress=False)
    rgb, mask = out.conditions.rgb, out.conditions.mask
    assert bool((~mask).any()) and torch.equal(rgb, plain.conditions.rgb)
    assert bool((rgb.movedim(2, -1)[~mask] == 0).all())  # the kept warp: black holes
    want = pipe.tokenizer.normalize(pipe.tokenizer.encode(fill_warp_holes(rgb, mask)))
    torch.testing.assert_close(out.latents, want, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(plain.latents, want, atol=1e-2)
