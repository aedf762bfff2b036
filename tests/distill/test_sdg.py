"""SDG generation loop: planning, rank split (simulated ranks), resume, refusal of mixed settings, sources."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.distill.sdg import (
    ImageSource,
    SceneResult,
    SourceItem,
    WorldSource,
    estimate_frame_depth,
    generate_sdg,
    plan_shards,
    rank_shards,
    resolve_rank,
    weights_digest,
)
from lyra.errors import ConfigError, InputFileError
from lyra.geometry.cameras import Cameras
from lyra.seeds import mix_seed
from lyra.shards import (
    MANIFEST_NAME,
    ShardDataset,
    compare_sets,
    read_manifest,
    read_shard,
    shard_files,
    shard_name,
)
from lyra.teacher.depth import DepthResult

V, T, H, W = 6, 9, 16, 32


class FakeSource:
    """``n`` synthetic inputs; item ``i`` is a deterministic function of ``i``."""

    trajectory_set = "fake6"
    name = "fake"

    def __init__(self, n: int = 20) -> None:
        self.n = n
        self.loaded: list[int] = []

    def __len__(self) -> int:
        return self.n

    def settings(self) -> dict:
        return {"kind": "fake", "n": self.n}

    def key(self, i: int) -> str:
        return str(100 + i)

    def world_seed(self, i: int) -> int:
        return 100 + i

    def noise_key(self, i: int) -> int:
        return 100 + i

    def load(self, indices):
        self.loaded += list(indices)
        out = []
        for i in indices:
            g = torch.Generator().manual_seed(i)
            cams = Cameras.from_fov(50.0, W, H, torch.eye(4).expand(V, T, 4, 4).clone())
            cams.c2w[..., 0, 3] = torch.arange(T) * 0.1 + i
            out.append(
                SourceItem(
                    str(100 + i),
                    100 + i,
                    torch.rand(3, H, W, generator=g),
                    None,
                    cams[0, 0],
                    cams,
                    torch.rand(V, T, H, W, generator=g),
                )
            )
        return out


class FakeTeacher:
    """Deterministic in the noise seed: latents = noise, videos = the image plus seeded noise."""

    def __init__(self, tag: str = "t0") -> None:
        self.tag = tag
        self.calls: list[int] = []

    def weight_hashes(self) -> dict:
        return {"teacher": self.tag, "tokenizer": "tok", "depth": "dep"}

    def generate(self, requests, steps):
        self.calls.append(len(requests))
        out = []
        for r in requests:
            g = torch.Generator().manual_seed(r.noise_seed)
            lat = torch.randn(V, 16, 2, H // 8, W // 8, generator=g)
            vid = (r.image[None, None] + 0.2 * torch.randn(V, T, 3, H, W, generator=g)).clamp(0, 1)
            out.append(SceneResult(lat, vid, r.trajectories, torch.full((H, W), 2.0)))
        return out


def fake_depth(x: torch.Tensor) -> DepthResult:
    d = 1.0 + x.mean(1)
    return DepthResult(d, torch.ones_like(d))


def run(out, source=None, teacher=None, **kw):
    kw = {"preset": "fake", "count": 5, "shard_size": 2, "steps": 2, "progress": False} | kw
    return generate_sdg(out, source or FakeSource(), teacher or FakeTeacher(), fake_depth, **kw)


def files_bytes(root) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in shard_files(root).values()}


def test_plan_and_rank_split():
    plans = plan_shards(3, 10, 4)
    assert [p.items for p in plans] == [(3, 4, 5, 6), (7, 8, 9, 10), (11, 12)]
    for W_ in (1, 2, 3, 5):
        parts = [rank_shards(plans, r, W_) for r in range(W_)]
        assert sorted(p.index for part in parts for p in part) == [0, 1, 2]
        assert all(p.index % W_ == r for r, part in enumerate(parts) for p in part)
    assert resolve_rank() == (0, 1)  # no launcher: one process
    with pytest.raises(ConfigError):
        plan_shards(0, 0, 8)
    with pytest.raises(ConfigError):
        rank_shards(plans, 2, 2)


def test_samples_hold_the_teacher_output(tmp_path):
    rep = run(tmp_path / "a", count=3, shard_size=2, seed=7)
    assert rep.written == [0, 1] and rep.samples == 3 and rep.manifest == tmp_path / "a" / MANIFEST_NAME
    ds = ShardDataset(tmp_path / "a", as_float=False)
    assert ds.sample_ids == ["fake:100:fake6", "fake:101:fake6", "fake:102:fake6"]
    src, teacher = FakeSource(), FakeTeacher()
    item = src.load([1])[0]
    seed = mix_seed(7, 101)
    from lyra.distill.sdg import SceneRequest

    res = teacher.generate([SceneRequest(item.image, None, item.camera, item.trajectories, seed)], 2)[0]
    s = ds[1]
    assert s["noise_seed"] == seed and s["world_seed"] == 101
    assert torch.equal(s["latents"], res.latents.half())
    rgb = (res.videos.permute(0, 1, 3, 4, 2) * 255 + 0.5).to(torch.uint8)
    assert torch.equal(s["rgb"], rgb)
    assert torch.equal(s["depth"], (1 + rgb.float().mean(-1) / 255).half())  # the estimator saw the stored frames
    assert torch.equal(s["K"], item.trajectories.K) and torch.equal(s["c2w"], item.trajectories.c2w)
    assert torch.equal(s["gt_depth"], item.gt_depth.half())
    assert torch.equal(s["image"], (item.image.permute(1, 2, 0) * 255 + 0.5).to(torch.uint8))
    m = read_manifest(tmp_path / "a")
    assert m["complete"] is True and m["num_samples"] == 3 and m["settings"]["seed"] == 7
    assert m["plan"] == {"start": 0, "count": 3, "shard_size": 2}


def test_union_of_simulated_ranks_equals_one_process(tmp_path):
    run(tmp_path / "one", count=7, shard_size=2, start=3)
    reps = [
        run(tmp_path / "three", count=7, shard_size=2, start=3, rank=r, world_size=3, batch_size=2) for r in (2, 0, 1)
    ]
    assert [r.written for r in reps] == [[2], [0, 3], [1]]
    one, three = files_bytes(tmp_path / "one"), files_bytes(tmp_path / "three")
    assert list(one) == [shard_name(k) for k in range(4)]
    assert one == three  # same sample ids, same bytes
    cmp = compare_sets(tmp_path / "one", tmp_path / "three")
    assert cmp["identical_files"] and cmp["same_sample_ids"] and cmp["same_settings"] and cmp["shards"] == 4
    assert set(cmp["max_abs_diff"].values()) == {0.0} and "gt_depth" in cmp["max_abs_diff"]
    run(tmp_path / "other", teacher=FakeTeacher("t1"), count=6, shard_size=2, start=3)  # other weights, fewer
    cmp = compare_sets(tmp_path / "one", tmp_path / "other")
    assert not cmp["same_settings"] and not cmp["same_shards"] and not cmp["identical_files"]
    assert cmp["max_abs_diff"]["rgb"] == 0.0 and cmp["max_abs_diff"]["K"] == 0.0  # the same content, first shards
    ids = ShardDataset(tmp_path / "three").sample_ids
    assert ids == [f"fake:{100 + i}:fake6" for i in range(3, 10)] and len(set(ids)) == len(ids)


def test_resume_after_a_kill(tmp_path):
    out = tmp_path / "out"
    run(out, count=5, shard_size=2)
    before = files_bytes(out)
    (out / shard_name(1)).unlink()
    stray = out / f".{shard_name(1)[: -len('.safetensors')]}.abc123.tmp.safetensors"
    stray.write_bytes(b"half a shard")
    src, teacher = FakeSource(), FakeTeacher()
    rep = run(out, src, teacher, count=5, shard_size=2, rank=0, world_size=2)
    assert rep.written == [] and rep.skipped == [0, 2]  # shard 1 belongs to rank 1 ...
    assert stray.exists()  # ... and so does its temporary file: rank 0 leaves it alone
    rep = run(out, src, teacher, count=5, shard_size=2)
    assert rep.written == [1] and rep.skipped == [0, 2] and src.loaded == [2, 3]
    assert not stray.exists() and not [p for p in out.iterdir() if p.name.startswith(".")]
    assert files_bytes(out) == before
    assert read_manifest(out)["complete"] is True


def test_time_budget_stops_between_shards_and_a_rerun_completes(tmp_path):
    out = tmp_path / "out"
    rep = run(out, count=5, shard_size=2, max_seconds=0.0)  # spent before the second shard starts
    assert rep.stopped_early and rep.written == [0] and rep.samples == 2
    m = read_manifest(out)
    assert m["complete"] is False and m["num_samples"] == 2
    rep = run(out, count=5, shard_size=2)
    assert not rep.stopped_early and rep.skipped == [0] and rep.written == [1, 2]
    run(tmp_path / "one", count=5, shard_size=2)
    assert files_bytes(out) == files_bytes(tmp_path / "one")


def test_growing_the_range_completes_the_last_shard(tmp_path):
    out = tmp_path / "out"
    run(out, count=5, shard_size=2)
    src = FakeSource()
    rep = run(out, src, count=7, shard_size=2)
    assert rep.skipped == [0, 1] and rep.written == [2, 3] and src.loaded == [4, 5, 6]
    run(tmp_path / "ref", count=7, shard_size=2)
    assert files_bytes(out) == files_bytes(tmp_path / "ref")


@pytest.mark.parametrize("change", [{"steps": 3}, {"seed": 1}, {"shard_size": 3}, {"start": 1}, {"teacher": "t1"}])
def test_other_settings_are_refused(tmp_path, change):
    out = tmp_path / "out"
    run(out, count=2, shard_size=2)
    before = files_bytes(out)
    kw = {"count": 2, "shard_size": 2} | change
    teacher = FakeTeacher(kw.pop("teacher", "t0"))
    with pytest.raises(ConfigError, match="different settings"):
        run(out, teacher=teacher, **kw)
    assert files_bytes(out) == before
    (out / MANIFEST_NAME).unlink()  # the shard headers alone are enough to refuse
    with pytest.raises(ConfigError, match="different settings"):
        run(out, teacher=teacher, **kw)


def test_range_checks(tmp_path):
    with pytest.raises(ConfigError, match="leaves the source"):
        run(tmp_path / "x", FakeSource(4), count=5)
    with pytest.raises(Exception, match="does not exist"):
        run(tmp_path / "missing" / "x")


def test_teacher_batches_within_shards(tmp_path):
    teacher = FakeTeacher()
    run(tmp_path / "b", teacher=teacher, count=7, shard_size=3, batch_size=2)
    assert teacher.calls == [2, 1, 2, 1, 1]
    run(tmp_path / "c", count=7, shard_size=3, batch_size=1)
    assert files_bytes(tmp_path / "b") == files_bytes(tmp_path / "c")


def test_estimate_frame_depth_chunks():
    rgb = torch.randint(0, 256, (2, 5, 4, 6, 3), dtype=torch.uint8)
    d = estimate_frame_depth(fake_depth, rgb, chunk=3)
    assert torch.allclose(d, 1 + rgb.float().mean(-1) / 255)


def test_weights_digest(tmp_path):
    import hashlib

    (tmp_path / "a.safetensors").write_bytes(b"abc")
    assert weights_digest(tmp_path / "a.safetensors") == hashlib.sha256(b"abc").hexdigest()
    assert weights_digest(tmp_path) == hashlib.sha256(b"abc").hexdigest()
    (tmp_path / "b.safetensors").write_bytes(b"d")
    lines = f"a.safetensors {hashlib.sha256(b'abc').hexdigest()}\nb.safetensors {hashlib.sha256(b'd').hexdigest()}\n"
    assert weights_digest(tmp_path) == hashlib.sha256(lines.encode()).hexdigest()
    with pytest.raises(InputFileError):
        weights_digest(tmp_path / "nothing")


def test_world_source_micro():
    src = WorldSource("test", "micro", gt_depth=True, store_gt=True)
    assert len(src) == 1000 and src.key(5) == "5" and src.world_seed(5) == 5
    from lyra.world import make_example

    item = src.load([3])[0]
    ex = make_example(3, "micro")
    assert tuple(item.image.shape) == (3, 48, 80)  # 88 → 80: centre crop to multiples of 16
    assert torch.equal(item.image, ex.image[:, :, 4:84]) and torch.equal(item.depth, ex.depth[:, 4:84])
    assert torch.equal(item.gt_depth, ex.depths[..., 4:84])
    assert item.trajectories.width == 80 and torch.equal(item.trajectories.c2w, ex.cameras.c2w)
    assert math.isclose(float(item.trajectories.K[0, 0, 0, 2]), float(ex.cameras.K[0, 0, 0, 2]) - 4)
    assert torch.equal(item.camera.c2w, ex.cameras.c2w[0, 0])
    assert WorldSource("test", "micro").load([3])[0].depth is None  # estimated by the teacher
    alone = WorldSource("test", "micro", gt_depth=True).load([3, 4])  # renders the input views only
    assert alone[0].gt_depth is None and alone[1].key == "4"
    assert torch.allclose(alone[0].image, item.image, atol=1e-6) and torch.allclose(alone[0].depth, item.depth)


def test_image_source(tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, size in (("b.png", (40, 20)), ("a.jpg", (64, 64)), ("notes.txt", None)):
        if size is None:
            (folder / name).write_text("x")
        else:
            Image.new("RGB", size, (255, 0, 0)).save(folder / name)
    src = ImageSource(folder, 16, 32)
    assert len(src) == 2 and [src.key(0), src.key(1)] == ["a.jpg", "b.png"]
    items = src.load([1, 0])
    assert all(tuple(it.image.shape) == (3, 16, 32) for it in items)
    assert torch.allclose(items[0].image[0], torch.ones(16, 32)) and float(items[0].image[1:].abs().max()) < 1e-6
    s1 = src.settings()
    (folder / "c.png").write_bytes((folder / "b.png").read_bytes())
    assert ImageSource(folder, 16, 32).settings()["files_sha256"] != s1["files_sha256"]
    with pytest.raises(InputFileError, match="no images"):
        ImageSource(tmp_path, 16, 32)
    with pytest.raises(ConfigError, match="multiples of 16"):
        ImageSource(folder, 20, 32)
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputFileError, match="broken.png cannot be read as an image"):
        ImageSource(folder, 16, 32)  # found up front, before any model loads (it used to fail at its load)
    Image.new("RGB", (64, 64), (0, 255, 0)).save(folder / "broken.png")
    (folder / "broken.png").write_bytes((folder / "broken.png").read_bytes()[:60])  # header intact, pixels cut
    with pytest.raises(InputFileError, match="broken.png"):
        ImageSource(folder, 16, 32).load([2])


def test_dataset_from_scan_without_manifest(tmp_path):
    out = tmp_path / "out"
    run(out, count=3, shard_size=2)
    (out / MANIFEST_NAME).unlink()
    ds = ShardDataset(out)
    assert len(ds) == 3
    h, t = read_shard(out / shard_name(0))
    assert torch.equal(ds[1]["latents"], t["latents"][1].float())


# ------------------------------------------------------------------ the real pipeline (tiny random teacher)
@pytest.fixture(scope="module")
def random_teacher(tmp_path_factory):
    """A randomly initialised tiny denoiser saved like shipped weights (the shipped ones may not exist yet)."""
    from lyra.teacher.denoiser import TeacherDenoiser

    folder = tmp_path_factory.mktemp("teacher") / "teacher_tiny"
    TeacherDenoiser.from_config("tiny", seed=3).save_pretrained(folder)
    return folder


def test_pipeline_teacher_batch_equals_pipeline_calls(random_teacher):
    from lyra.distill.sdg import PipelineTeacher, SceneRequest
    from lyra.teacher.pipeline import TeacherPipeline

    pipe = TeacherPipeline.from_preset("tiny", weights=random_teacher, device="cpu")
    teacher = PipelineTeacher(pipe)
    assert teacher.weight_hashes()["teacher"] == weights_digest(random_teacher)
    items = WorldSource("test", "micro", gt_depth=False).load([0, 1])
    items[1].depth = WorldSource("test", "micro", gt_depth=True).load([1])[0].depth  # one given, one estimated
    reqs = [SceneRequest(it.image, it.depth, it.camera, it.trajectories, 11 + k) for k, it in enumerate(items)]
    batched = teacher.generate(reqs, steps=2)
    for r, b in zip(reqs, batched, strict=True):
        out = pipe(r.image, r.depth, r.camera, r.trajectories, seed=r.noise_seed, steps=2, progress=False)
        assert torch.allclose(b.latents, out.raw_latents, atol=1e-4, rtol=1e-4)
        assert torch.allclose(b.videos, pipe.decode(out), atol=1e-4)
        assert torch.equal(b.input_depth, out.depth) and torch.equal(b.cameras.c2w, out.cameras.c2w)
    assert not torch.allclose(batched[0].latents[:, :, :1], batched[1].latents[:, :, :1])


def test_composite_keeps_the_warp_where_it_sees(random_teacher):
    from lyra.distill.sdg import PipelineTeacher, SceneRequest
    from lyra.teacher.pipeline import TeacherPipeline

    pipe = TeacherPipeline.from_preset("tiny", weights=random_teacher, device="cpu")
    items = WorldSource("test", "micro", gt_depth=True).load([0, 1])
    reqs = [SceneRequest(it.image, it.depth, it.camera, it.trajectories, 5 + k) for k, it in enumerate(items)]
    plain = PipelineTeacher(pipe).generate(reqs, steps=2)
    both = [PipelineTeacher(pipe, composite=True).generate(reqs, steps=2),  # one batch
            [PipelineTeacher(pipe, composite=True).generate([r], steps=2)[0] for r in reqs]]  # one call each
    for r, p, c_batch, c_one in zip(reqs, plain, *both, strict=True):
        out = pipe(r.image, r.depth, r.camera, r.trajectories, seed=r.noise_seed, steps=2, progress=False)
        m = out.conditions.mask[:, :, None].expand_as(p.videos)
        assert 0.05 < float(m.float().mean()) < 1.0  # the micro worlds have both
        warped = out.conditions.rgb.clamp(0, 1)
        for c in (c_batch, c_one):
            assert torch.allclose(c.videos[m], warped[m], atol=1e-6)  # the warp, through no tokenizer
            assert torch.allclose(c.videos[~m], p.videos[~m], atol=1e-4)  # the teacher in the holes
            assert torch.equal(c.latents, p.latents) or torch.allclose(c.latents, p.latents, atol=1e-4)
        m0 = m[:, 0]  # frame 0 (the input camera): where the warp sees, the input image itself
        assert float(m0.float().mean()) > 0.5  # (sky pixels have no depth: no warp)
        assert torch.allclose(c_one.videos[:, 0][m0], r.image.expand_as(m0)[m0], atol=1e-4)


def test_cli_sdg_end_to_end(random_teacher, tmp_path, capsys):
    from lyra.cli import main
    from lyra.teacher.pipeline import TeacherPipeline

    out = tmp_path / "sdg"
    argv = [
        "sdg",
        str(out),
        "--split",
        "test",
        "--count",
        "2",
        "--shard-size",
        "1",
        "--steps",
        "2",
        "--world-preset",
        "micro",
        "--teacher-weights",
        str(random_teacher),
        "--device",
        "cpu",
        "--no-progress",
        "--store-gt",
    ]
    assert main(argv) == 0
    assert "2 scenes in 2 new shards" in capsys.readouterr().out
    ds = ShardDataset(out)
    assert ds.sample_ids == ["world-test:0:world-gt", "world-test:1:world-gt"]
    s = ds[1]
    pipe = TeacherPipeline.from_preset("tiny", weights=random_teacher, device="cpu")
    item = WorldSource("test", "micro", store_gt=True).load([1])[0]
    ref = pipe(item.image, None, item.camera, item.trajectories, seed=mix_seed(0, 1), steps=2, progress=False)
    video = pipe.decode(ref)
    assert torch.allclose(s["latents"], ref.raw_latents, rtol=1e-3, atol=1e-3)  # fp16 storage
    assert (s["rgb"] - video).abs().max() <= 0.5 / 255 + 1e-6  # uint8 storage
    assert torch.equal(s["gt_depth"], item.gt_depth.half().float())
    est = pipe.depth_estimator(s["rgb"].flatten(0, 1)).depth.reshape(s["depth"].shape)
    assert torch.allclose(s["depth"], est, rtol=1e-3)  # the depth net on the stored frames
    m = read_manifest(out)
    assert m["complete"] and m["settings"]["weights"]["teacher"] == weights_digest(random_teacher)
    assert m["settings"]["weights"]["tokenizer"] and m["settings"]["weights"]["depth"]
    assert main(argv) == 0 and "0 scenes in 0 new shards, 2 shards already complete" in capsys.readouterr().out
    assert main(argv + ["--steps", "3"]) == 2  # the last --steps wins
    assert "different settings (steps: 2 there, 3 now)" in capsys.readouterr().err
    assert main(["sdg", str(tmp_path / "x"), "--images", str(tmp_path), "--gt-depth"]) == 2


def test_cli_sdg_samples_a_few_step_teachers_own_step_count(tmp_path, capsys):
    """Without --steps, lyra sdg samples the step count a few-step teacher records (as lyra generate does)."""
    from lyra.cli import main
    from lyra.teacher.denoiser import TeacherDenoiser

    few = tmp_path / "teacher_few"
    den = TeacherDenoiser.from_config("tiny", seed=4)
    den.default_steps = 2
    den.save_pretrained(few)
    out = tmp_path / "sdg"
    assert main(["sdg", str(out), "--split", "test", "--count", "1", "--shard-size", "1", "--world-preset", "micro",
                 "--teacher-weights", str(few), "--device", "cpu", "--no-progress"]) == 0
    assert read_manifest(out)["settings"]["steps"] == 2
    capsys.readouterr()


def test_cli_sdg_help_teaches():
    import argparse

    from lyra.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = sub.choices["sdg"].format_help()
    for word in ("--count", "--images", "--gt-depth", "--store-gt", "--shard-size", "accelerate launch", "Resumable"):
        assert word in text


def test_stored_plucker_latents_match_what_training_computes(tmp_path):
    """``plucker_encoder``: every sample stores its cameras' Plücker latents (fp16), equal to what the student's
    trainer computes (LatentCache.plucker), the settings say so (a folder without them is refused on resume), and the
    trainer reads them instead of encoding (counted as stored)."""
    from lyra.student.latents import LatentCache
    from lyra.tokenizer import Tokenizer

    tok = Tokenizer.from_preset("tiny").eval()
    out = tmp_path / "p"
    run(out, count=2, shard_size=2, plucker_encoder=tok)
    ds = ShardDataset(out, as_float=False)
    assert read_manifest(out)["settings"]["plucker"] == "stored"
    item = FakeSource().load([1])[0]
    s = ds[1]
    assert s["plucker"].dtype == torch.float16
    assert tuple(s["plucker"].shape) == (V, 2 * tok.latent_channels, 2, H // 8, W // 8)
    fresh = LatentCache(tok, 0).plucker("x", item.trajectories)
    torch.testing.assert_close(s["plucker"], fresh, atol=2e-3, rtol=2e-3)
    cache = LatentCache(tok, 4)
    zero = torch.zeros_like(fresh)
    assert torch.equal(cache.plucker("y", item.trajectories, stored=zero), zero)  # the stored values, as they are
    assert (cache.stored_hits, cache.misses) == (1, 0)
    with pytest.raises(ConfigError, match="different settings"):  # the same folder without Plücker latents
        run(out, count=2, shard_size=2)


def test_stored_plucker_needs_the_same_tokenizer():
    from lyra.distill.sdg import weights_digest
    from lyra.tokenizer.tokenizer import preset_weights_path
    from lyra.train.recipes.student import stored_plucker_usable

    tiny = weights_digest(preset_weights_path("tiny"))
    assert stored_plucker_usable({"plucker": "stored", "weights": {"tokenizer": tiny}}, "tiny")
    assert not stored_plucker_usable({"plucker": "stored", "weights": {"tokenizer": "other"}}, "tiny")
    assert not stored_plucker_usable({"weights": {"tokenizer": tiny}}, "tiny")
