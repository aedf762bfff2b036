"""Linear (PCA) transform codes of the tokenizer's latent layouts on procedural-world videos (issue 18).

For each layout (t frames × 8×8 pixels → k channels; the first frame alone, as the causal tokenizer codes it),
fit PCA on the blocks of training-world videos (worlds 1,999,000 + i, outside the test split and the seeds training
draws) and reconstruct the held-out test-world videos (the first test worlds of the tokenizer's evaluation) from
their k components; score them as the tokenizer's evaluation does (lyra.eval.metrics: PSNR and SSIM per frame,
averaged), beside the shipped ``tiny`` tokenizer's round trip of the same videos. A linear block code is what a
learned code of the same layout should at least reach: it ranks layouts by how much of these videos a latent budget
holds; it does not say what a network reaches.

    python docs/bench/tokenizer_issue18/linear_codes.py --train-worlds 4 --test-worlds 4 --cache DIR \
        --json docs/bench/tokenizer_issue18/linear_codes.json
"""
from __future__ import annotations

import argparse
import json
import time

import torch

import lyra.world as world
from lyra.tokenizer import Tokenizer
from lyra.train.recipes.tokenizer_data import TRAIN_SEED_BASE


def videos(seeds: list[int]) -> torch.Tensor:
    out = [world.render_samples([world.sample_world(s, "tiny")], "cpu")[0].videos[:, :17].float() for s in seeds]
    return torch.cat(out)  # [N, 17, 3, H, W]


def cached_videos(seeds: list[int], cache: str | None) -> torch.Tensor:
    if cache:
        import os

        path = f"{cache}/{seeds[0]}_{len(seeds)}.pt"
        if os.path.exists(path):
            return torch.load(path)
        v = videos(seeds)
        torch.save(v, path)
        return v
    return videos(seeds)


def unblock(first: torch.Tensor, rest: torch.Tensor, shape: tuple[int, ...], t: int) -> torch.Tensor:
    """Inverse of :func:`blocks`: videos [N, 17, 3, H, W] from the two block sets."""
    n, f, c, h, w = shape
    v0 = first.reshape(n, h // 8, w // 8, c, 8, 8).permute(0, 3, 1, 4, 2, 5).reshape(n, 1, c, h, w)
    g = (f - 1) // t
    vr = rest.reshape(n, g, h // 8, w // 8, t, c, 8, 8).permute(0, 1, 4, 5, 2, 6, 3, 7).reshape(n, f - 1, c, h, w)
    return torch.cat([v0, vr], 1)


def blocks(v: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First-frame 8×8 blocks [M, 192] and blocks of t frames × 8×8 of frames 1.. [M', 192t]."""
    n, f, c, h, w = v.shape
    first = v[:, 0].reshape(n, c, h // 8, 8, w // 8, 8).permute(0, 2, 4, 1, 3, 5).reshape(-1, c * 64)
    rest = v[:, 1:]
    g = (f - 1) // t
    rest = rest.reshape(n, g, t, c, h // 8, 8, w // 8, 8).permute(0, 1, 4, 6, 2, 3, 5, 7).reshape(-1, t * c * 64)
    return first.double(), rest.double()


def pca_code(train: torch.Tensor, test: torch.Tensor, k: int) -> torch.Tensor:
    """The k-component PCA reconstruction (basis fitted on ``train``) of ``test`` blocks, clamped to [0, 1]."""
    mean = train.mean(0)
    cov = (train - mean).T @ (train - mean) / train.shape[0]
    _, vecs = torch.linalg.eigh(cov)
    basis = vecs[:, -k:]
    return (((test - mean) @ basis) @ basis.T + mean).clamp(0, 1)


def scores(rec: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """The tokenizer evaluation's figures (lyra.eval.metrics: mean over videos and frames of per-frame PSNR, SSIM),
    and the PSNR of the pooled squared error of the first and of the other frames."""
    from lyra.eval.metrics import psnr, ssim

    rec, ref = rec.float(), ref.float()
    p = torch.cat([psnr(rec[i:i + 6], ref[i:i + 6]) for i in range(0, len(ref), 6)])  # [N, T]
    s = torch.cat([ssim(rec[i:i + 6], ref[i:i + 6]) for i in range(0, len(ref), 6)])
    se = (rec - ref).double().square().mean(dim=(2, 3, 4))  # [N, T]
    return {"psnr": round(float(p.mean()), 2), "ssim": round(float(s.mean()), 4),
            "psnr_first_frame": round(float(p[:, 0].mean()), 2), "psnr_other_frames": round(float(p[:, 1:].mean()), 2),
            "pooled_psnr_first_frame": round(float(-10 * torch.log10(se[:, 0].mean())), 2),
            "pooled_psnr_other_frames": round(float(-10 * torch.log10(se[:, 1:].mean())), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-worlds", type=int, default=4)
    ap.add_argument("--test-worlds", type=int, default=4)
    ap.add_argument("--json", default=None)
    ap.add_argument("--cache", default=None, help="folder keeping the rendered videos between runs")
    a = ap.parse_args()
    t0 = time.perf_counter()
    train = cached_videos([TRAIN_SEED_BASE + 999_000 + i for i in range(a.train_worlds)], a.cache)
    test = cached_videos(list(world.split_seeds("test")[: a.test_worlds]), a.cache)
    res: dict = {"train_videos": train.shape[0], "test_videos": test.shape[0], "layouts": {}}
    for name, t, k in [("tiny layout 16ch x 8x8x8", 8, 16), ("C32 32ch x 8x8x8", 8, 32), ("T4 16ch x 4x8x8", 4, 16),
                       ("64ch x 8x8x8", 8, 64), ("16ch x 2x8x8", 2, 16), ("16ch x 1x8x8 (per frame)", 1, 16)]:
        f_tr, r_tr = blocks(train, t)
        f_te, r_te = blocks(test, t)
        assert torch.equal(unblock(f_te, r_te, tuple(test.shape), t), test.double())  # the blocking is exact
        rec = unblock(pca_code(f_tr, f_te, max(k, 16)), pca_code(r_tr, r_te, k), tuple(test.shape), t)
        res["layouts"][name] = {"channels": k, "frames_per_latent_frame": t, **scores(rec, test.double())}
    tok = Tokenizer.from_preset("tiny")
    with torch.inference_mode():
        p = []
        for i in range(0, test.shape[0], 6):
            x = test[i:i + 6]
            y = tok.roundtrip(x).float()
            p.append(y)
    res["tiny_roundtrip"] = scores(torch.cat(p), test)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(res, indent=2))
    if a.json:
        open(a.json, "w").write(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
