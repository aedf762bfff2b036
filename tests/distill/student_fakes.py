"""Micro SDG folders for the student tests: procedural worlds with the tokenizer as a stand-in teacher.

Each sample is a ``micro`` world of the test split (9 frames, centre-cropped to 48 × 80 like ``lyra sdg``),
its first ``views`` trajectories; "the teacher's latents" are the tiny tokenizer's latents of the GT videos
and "the decoded frames" their tokenizer decode (so latents and frames belong together as in real SDG data);
the depth estimate is the GT depth. Written with the SDG shard writer, read back with ``ShardDataset``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lyra.geometry.cameras import Cameras
from lyra.shards import SdgSample, scan_manifest, shard_name, write_manifest, write_shard

SETTINGS = {"preset": "tiny", "source": {"kind": "world", "split": "test", "world_preset": "micro",
                                         "trajectories": "world-gt"},
            "start": 0, "shard_size": 2, "steps": 0, "seed": 0, "input_depth": "gt", "frame_depth": "gt",
            "store_gt": False, "weights": {"teacher": "stand-in: tokenizer round trip"}}


def make_fake_sdg(root: Path, seeds: list[int], tokenizer, views: int = 2, shard_size: int = 2) -> Path:
    from lyra.world import make_examples

    root.mkdir(parents=True, exist_ok=True)
    samples = []
    for ex in make_examples(seeds, "micro"):
        H, W = 48, 80
        left = (ex.image.shape[-1] - W) // 2
        xs = slice(left, left + W)
        cams = ex.cameras.crop(left, 0, W, H)[:views]
        videos = ex.videos[:views, ..., xs]  # [V, T, 3, H, W]
        with torch.no_grad():
            lat = tokenizer.encode(videos)
            decoded = tokenizer.decode(lat)[..., :H, :W]
        rgb = (decoded.permute(0, 1, 3, 4, 2) * 255).round().clamp(0, 255).to(torch.uint8)
        samples.append(SdgSample(
            sample_id=f"world-test:{ex.seed}:world-gt", world_seed=ex.seed, noise_seed=ex.seed, latents=lat, rgb=rgb,
            K=cams.K, c2w=cams.c2w, depth=ex.depths[:views, ..., xs], image=(ex.image[:, :, xs].permute(1, 2, 0)
                                                                               * 255).round().to(torch.uint8),
            input_depth=ex.depth[:, xs]))
    settings = dict(SETTINGS, shard_size=shard_size)
    for k in range(0, len(samples), shard_size):
        write_shard(root / shard_name(k // shard_size), k // shard_size, samples[k:k + shard_size], settings)
    write_manifest(root, scan_manifest(root, settings))
    return root


def make_fake_dynamic_sdg(root: Path, seeds: list[int], tokenizer, views: int = 2, reversal: bool = True,
                          shard_size: int = 2) -> Path:
    """Dynamic micro worlds of the test split as dynamic SDG data, the tokenizer as the stand-in teacher.

    Per world: the first ``views`` trajectories forward (camera ``f`` at time ``t_f``: the GT videos) and, with
    ``reversal``, the same cameras at the reversed times ``t_{T-1-f}`` (what the teacher would make of the
    reversed video); their tokenizer latents and decodes; the input camera's video and its depth.
    """
    from lyra.world import SceneBatch, render, sample_world
    from lyra.world.dataset import split_seeds

    root.mkdir(parents=True, exist_ok=True)
    samples = []
    H, W = 48, 80
    for seed in seeds:
        ws = sample_world(split_seeds("test")[seed], "micro", dynamic=True)
        left = (ws.preset.width - W) // 2
        cams = ws.cameras.crop(left, 0, W, H)[:views]
        t = ws.frame_times
        T = len(t)
        dirs = [t, t.flip(0)] if reversal else [t]
        batch = SceneBatch.pack([ws.scene], "cpu")
        ic = cams[0, 0]
        res = render(batch, Cameras.cat([cams.flatten()] * len(dirs) + [Cameras(ic.K.expand(T, 3, 3),
                                                                              ic.c2w.expand(T, 4, 4), W, H)]),
                     torch.cat([d.repeat(views) for d in dirs] + [t]))
        n = views * T * len(dirs)
        videos = res.rgb[:n].reshape(len(dirs) * views, T, 3, H, W)
        with torch.no_grad():
            lat = tokenizer.encode(videos)
            decoded = tokenizer.decode(lat)[..., :H, :W]
        rgb = (decoded.permute(0, 1, 3, 4, 2) * 255).round().clamp(0, 255).to(torch.uint8)
        all_cams = Cameras.cat([cams] * len(dirs))
        video = res.rgb[n:]
        samples.append(SdgSample(
            sample_id=f"world-test-dynamic:{seed}:world-gt" + ("+reversed" if reversal else ""), world_seed=seed,
            noise_seed=seed, latents=lat, rgb=rgb, K=all_cams.K, c2w=all_cams.c2w,
            depth=res.depth[:n].reshape(len(dirs) * views, T, H, W), image=_u8(video[0]),
            input_depth=res.depth[n], times=torch.stack([d for d in dirs for _ in range(views)]),
            input_video=_u8(video), input_video_depth=res.depth[n:]))
    settings = dict(SETTINGS, shard_size=shard_size, source=dict(SETTINGS["source"], dynamic=True,
                                                                   motion_reversal=reversal))
    directions = ["forward", "reversed"] if reversal else ["forward"]
    for k in range(0, len(samples), shard_size):
        write_shard(root / shard_name(k // shard_size), k // shard_size, samples[k:k + shard_size], settings,
                    directions)
    write_manifest(root, scan_manifest(root, settings))
    return root


def _u8(images: torch.Tensor) -> torch.Tensor:
    """``[..., 3, H, W]`` in [0, 1] → ``[..., H, W, 3]`` uint8."""
    return (images.movedim(-3, -1) * 255).round().clamp(0, 255).to(torch.uint8)
