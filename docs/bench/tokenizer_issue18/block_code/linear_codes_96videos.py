"""PCA codes of the 8×8×8 layout at 48–128 channels on the tokenizer's 96 held-out test videos (issue 18).

Basis: the blocks of 96 training-world videos (worlds 1,999,000 + i, i < 16, six trajectories each; outside the test
split and the seeds training draws). Scored as the tokenizer evaluation scores (lyra.eval.metrics: mean per-frame PSNR
and SSIM, mean ΔE00), on the 16 first test worlds (96 videos) and on the saturated colour patches (ΔE00 inside them).
Writes {channels: {"test": [psnr, ssim, de], "patches": [psnr, ssim, de]}}.

    python docs/bench/tokenizer_issue18/block_code/linear_codes_96videos.py CACHE_DIR OUT.json
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # linear_codes.py (the 24-video study)
from linear_codes import blocks, cached_videos, unblock  # noqa: E402

import lyra.world as world  # noqa: E402
from lyra.eval.metrics import delta_e2000, psnr, ssim  # noqa: E402
from lyra.train.recipes.tokenizer_data import TRAIN_SEED_BASE, colour_patch_videos  # noqa: E402


def main() -> None:
    cache, out = sys.argv[1], sys.argv[2]
    Path(cache).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    train = torch.cat([cached_videos([TRAIN_SEED_BASE + 999_000 + i], cache) for i in range(16)])
    test = torch.cat([cached_videos([s], cache) for s in world.split_seeds("test")[:16]])

    def cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = x.mean(0)
        xc = x - m
        return m, xc.T @ xc / x.shape[0]

    f_tr, r_tr = blocks(train, 8)
    m0, c0 = cov(f_tr)
    m1, c1 = cov(r_tr)
    _, v0 = torch.linalg.eigh(c0)
    _, v1 = torch.linalg.eigh(c1)
    pv, pm = colour_patch_videos()

    def score(rec: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[float, float, float]:
        p = torch.cat([psnr(rec[i:i + 6], ref[i:i + 6]) for i in range(0, len(ref), 6)]).mean()
        s = torch.cat([ssim(rec[i:i + 6], ref[i:i + 6]) for i in range(0, len(ref), 6)]).mean()
        d = torch.cat([delta_e2000(rec[i:i + 6], ref[i:i + 6], None if mask is None else mask[i:i + 6][:, :, 0])
                       for i in range(0, len(ref), 6)]).mean()
        return round(float(p), 2), round(float(s), 4), round(float(d), 2)

    res = {}
    for k in (48, 64, 96, 128):
        def code(v: torch.Tensor, k: int = k) -> torch.Tensor:
            f, r = blocks(v, 8)
            b0, b1 = v0[:, -k:], v1[:, -k:]
            fr = ((f - m0) @ b0) @ b0.T + m0
            rr = ((r - m1) @ b1) @ b1.T + m1
            return unblock(fr, rr, tuple(v.shape), 8).clamp(0, 1).float()

        res[k] = {"test": score(code(test), test), "patches": score(code(pv), pv, pm)}
        print(k, res[k], round(time.time() - t0), flush=True)
    Path(out).write_text(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
