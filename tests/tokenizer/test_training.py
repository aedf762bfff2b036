"""Tokenizer training pieces: loss, evaluation, statistics, data determinism, and the script end to end."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lyra.tokenizer import Tokenizer
from lyra.train.recipes.tokenizer import evaluate_reconstruction, latent_statistics, main, reconstruction_loss
from lyra.train.recipes.tokenizer_data import VideoBatches, augment, mix_seed, synthetic_videos


class _Shift(nn.Module):
    """Stand-in autoencoder: ``forward(x).sample = x + offset`` (model range)."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, x):
        return SimpleNamespace(sample=x + self.offset)


def test_reconstruction_loss_closed_form():
    v = torch.rand(2, 9, 3, 8, 8)
    loss, parts = reconstruction_loss(_Shift(0.1), v, grad_weight=0.5)
    # A constant offset: L1 = 0.1, no gradient error, PSNR on [0,1] = -20 log10(0.05).
    assert float(loss) == pytest.approx(0.1, abs=1e-6)
    assert float(parts["grad_l1"]) == pytest.approx(0.0, abs=1e-6)
    assert float(parts["psnr"]) == pytest.approx(-20 * math.log10(0.05), abs=1e-3)


def test_evaluate_reconstruction_per_frame():
    class Fake:
        device = torch.device("cpu")

        def roundtrip(self, v):
            out = v.clone()
            out[:, 0] += 0.01  # first frame 40 dB, the others 20 dB
            out[:, 1:] += 0.1
            return out

    v = [torch.full((2, 9, 3, 16, 16), 0.5), torch.full((1, 9, 3, 16, 16), 0.3)]
    r = evaluate_reconstruction(Fake(), v)
    assert r["videos"] == 3 and len(r["psnr_per_frame"]) == 9
    assert r["psnr_first_frame"] == pytest.approx(40.0, abs=1e-3)
    assert r["psnr_other_frames"] == pytest.approx(20.0, abs=1e-3)
    assert r["psnr"] == pytest.approx((40 + 8 * 20) / 9, abs=1e-3)
    assert 0.0 < r["ssim"] <= 1.0


def test_latent_statistics_exact():
    class Fake:
        device = torch.device("cpu")

        def encode(self, v):
            b = v.shape[0]
            z = torch.zeros(b, 16, 3, 2, 2)
            z[:, :, 0] = 1.0  # frame 0: constant 1 → mean 1, std 0
            z[:, :, 1, 0] = 2.0  # frame 1: half 2, half 0 → mean 1, std 1
            z[:, 5, 2] = v[:, 0, 0, :2, :2] * 0 + torch.arange(b).view(b, 1, 1).float()
            return z

    mean, std = latent_statistics(Fake(), [torch.zeros(2, 17, 3, 8, 8), torch.zeros(2, 17, 3, 8, 8)])
    assert torch.allclose(mean[:, 0], torch.ones(16)) and torch.allclose(std[:, 0], torch.zeros(16), atol=1e-5)
    assert torch.allclose(mean[:, 1], torch.ones(16)) and torch.allclose(std[:, 1], torch.ones(16))
    assert mean[5, 2] == pytest.approx(0.5) and std[5, 2] == pytest.approx(0.5)


def test_synthetic_and_batches_are_deterministic():
    a = synthetic_videos(5, 2, 9, 16, 24)
    assert a.shape == (2, 9, 3, 16, 24) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, synthetic_videos(5, 2, 9, 16, 24))
    assert not torch.equal(a, synthetic_videos(6, 2, 9, 16, 24))
    vb = VideoBatches("synthetic", batch_size=2, frames=9, height=16, width=24, seed=1)
    assert torch.equal(vb(3), vb(3)) and not torch.equal(vb(3), vb(4))
    assert mix_seed(1, 2) != mix_seed(2, 1)
    x = torch.rand(64, 2, 1, 1, 2)
    y = augment(x, 0)
    flipped = (y == x.flip(-1)).flatten(1).all(1) & ~(y == x).flatten(1).all(1)
    reversed_ = (y == x.flip(1)).flatten(1).all(1) & ~(y == x).flatten(1).all(1)
    assert 10 < int(flipped.sum()) + int(reversed_.sum()) < 64


def test_world_pool_refresh_and_resume():
    rendered = []

    def render(seed, preset, device):
        rendered.append(seed)
        g = torch.Generator().manual_seed(seed)
        return torch.rand(6, 17, 3, 8, 8, generator=g)

    def source():
        return VideoBatches("world", batch_size=3, frames=9, height=8, width=8, pool_worlds=4, refresh_every=2,
                            refresh_count=1, render=render)

    s = source()
    # Slot generations: refresh r (at batch 2r) re-renders slot (r-1) mod 4.
    assert [s._slot_generation(k, 0) for k in range(4)] == [0, 0, 0, 0]
    assert [s._slot_generation(k, 2) for k in range(4)] == [1, 0, 0, 0]
    assert [s._slot_generation(k, 11) for k in range(4)] == [2, 1, 1, 1]
    straight = [s(i) for i in range(12)]
    assert all(b.shape == (3, 9, 3, 8, 8) for b in straight)
    # A fresh source started at batch 7 (a resumed run) reproduces batches 7..11.
    s2 = source()
    assert all(torch.equal(s2(i), straight[i]) for i in range(7, 12))
    assert len(set(rendered)) > 4  # the pool changed over time


def test_world_pool_prefill_renders_the_pool_before_the_first_batch():
    # --time-budget times the first steps: the pool must be rendered before them, not lazily inside them
    rendered = []

    def render(seed, preset, device):
        rendered.append(seed)
        return torch.rand(6, 17, 3, 8, 8, generator=torch.Generator().manual_seed(seed))

    s = VideoBatches("world", batch_size=2, frames=9, height=8, width=8, pool_worlds=5, refresh_every=4,
                     refresh_count=1, render=render)
    assert s.prefill(0) == 5 and sorted(rendered) == [s.world_seed(k, 0) for k in range(5)]
    assert s.prefill(0) == 0  # already held
    for i in range(4):  # batches before the first refresh render nothing more
        s(i)
    assert len(rendered) == 5
    s(4)  # refresh 1 re-renders slot 0
    assert rendered[5:] == [s.world_seed(0, 1)]
    # the batches are those of a pool filled lazily
    lazy = VideoBatches("world", batch_size=2, frames=9, height=8, width=8, pool_worlds=5, refresh_every=4,
                        refresh_count=1, render=render)
    assert all(torch.equal(lazy(i), s(i)) for i in range(6))
    assert VideoBatches("synthetic", batch_size=1).prefill(0) == 0


@pytest.mark.slow
def test_training_script_resume_and_export(tmp_path):
    out = tmp_path / "run"
    common = ["--out", str(out), "--data", "synthetic", "--steps", "3", "--frames", "9", "--size", "16x24",
              "--batch-size", "1", "--ckpt-every", "2", "--log-every", "1", "--test-worlds", "1",
              "--stats-batches", "1", "--warmup", "1", "--no-progress", "--resume"]
    assert main(common + ["--until", "2", "--no-export"]) == 0
    assert (out / "checkpoints" / "step-00000002").is_dir() and not (out / "export").exists()
    assert main(common) == 0
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "1", "2", "3"]
    tok = Tokenizer.from_pretrained(out / "export")
    assert tok.config.latents_std is not None and len(tok.config.latents_std) == 16 * tok.latent_channels
    rec = json.loads((out / "export" / "training_record.json").read_text())
    assert rec["steps"] == 3 and rec["complete"] and rec["data"]["source"] == "synthetic"
    assert len(rec["test"]["psnr_per_frame"]) == 9 and rec["test"]["videos"] == 6
    assert rec["weights"]["bytes"] < 2 * 3_863_248 + 200_000  # fp16
    assert "--until" not in rec["command"]


@pytest.mark.slow
def test_training_on_procedural_worlds(tmp_path):
    # The world source end to end at the "micro" world preset (9 × 48 × 88): one pool world, one test world.
    out = tmp_path / "w"
    args = ["--out", str(out), "--data", "world", "--world-preset", "micro", "--frames", "9", "--size", "48x88",
            "--steps", "2", "--batch-size", "2", "--pool-worlds", "1", "--refresh-every", "100", "--test-worlds", "1",
            "--stats-batches", "1", "--warmup", "1", "--no-progress", "--dynamic-fraction", "0.5"]
    assert main(args) == 0
    rec = json.loads((out / "export" / "training_record.json").read_text())
    assert rec["data"]["source"] == "world" and rec["test"]["world_seeds"] == [0]
    assert rec["test"]["split"] == "test" and rec["test"]["videos"] == 6 and len(rec["test"]["psnr_per_frame"]) == 9
