"""GPU benchmark of the tokenizer: the official Cosmos CV8x8x8 configuration (random weights, bf16) at
121 × 704 × 1280, the tiny preset at 17 × 176 × 320, and one tiny training step.

Reports latent videos per second (one latent video = one trajectory's ``[16, t, h, w]``), latent frames
per second, and peak GPU memory for encode and decode separately. Exits cleanly without CUDA.

    python benchmarks/gpu/tokenizer_official.py [--repeats 3] [--frames 121] [--size 704x1280]
        [--tiny-batch 6] [--train-batch 16] [--skip-official] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from lyra.tokenizer import Tokenizer


def _timed(fn, repeats: int) -> tuple[float, float, object]:
    """Median seconds of ``fn()`` after one warm-up, and peak memory (GiB) of one call."""
    out = fn()
    torch.cuda.synchronize()
    times = []
    torch.cuda.reset_peak_memory_stats()
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), torch.cuda.max_memory_allocated() / 2**30, out


def bench_inference(tok: Tokenizer, batch: int, frames: int, h: int, w: int, repeats: int) -> dict:
    video = torch.rand(batch, frames, 3, h, w, device="cuda")
    with torch.inference_mode():
        t_enc, m_enc, z = _timed(lambda: tok.encode(video), repeats)
        t_dec, m_dec, _ = _timed(lambda: tok.decode(z), repeats)
    t_lat = z.shape[2]
    return {
        "video": [batch, frames, h, w],
        "latents": list(z.shape),
        "encode_s": t_enc,
        "decode_s": t_dec,
        "encode_latent_videos_per_s": batch / t_enc,
        "decode_latent_videos_per_s": batch / t_dec,
        "encode_latent_frames_per_s": batch * t_lat / t_enc,
        "decode_latent_frames_per_s": batch * t_lat / t_dec,
        "encode_peak_gib": m_enc,
        "decode_peak_gib": m_dec,
    }


def bench_train_step(batch: int, repeats: int) -> dict:
    from lyra.train.recipes.tokenizer import reconstruction_loss

    torch.manual_seed(0)
    vae = Tokenizer.from_config("tiny").vae.cuda().train()
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-4)
    video = torch.rand(batch, 17, 3, 176, 320, device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss, _ = reconstruction_loss(vae, video)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t, mem, _ = _timed(step, repeats)
    return {"batch": batch, "s_per_step": t, "videos_per_s": batch / t, "peak_gib": mem}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, default=121)
    ap.add_argument("--size", default="704x1280")
    ap.add_argument("--tiny-batch", type=int, default=6)
    ap.add_argument("--train-batch", type=int, default=16)
    ap.add_argument("--skip-official", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: skipped")
        return
    torch.backends.cudnn.benchmark = True
    h, w = (int(v) for v in args.size.split("x"))
    result: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    if not args.skip_official:
        torch.manual_seed(0)
        with torch.device("cuda"):
            official = Tokenizer.from_config("official", max_batch=1)
        official = official.to(torch.bfloat16).eval().requires_grad_(False)
        result["official"] = {"parameters": official.num_parameters(), "dtype": "bfloat16",
                              **bench_inference(official, 1, args.frames, h, w, args.repeats)}
        r = result["official"]
        print(f"official CV8x8x8 ({r['parameters'] / 1e6:.1f} M, bf16, random weights) {args.frames}×{h}×{w} → "
              f"{tuple(r['latents'][1:])}: encode {r['encode_s']:.3f} s ({r['encode_latent_videos_per_s']:.2f} "
              f"latent videos/s, {r['encode_latent_frames_per_s']:.1f} latent frames/s, "
              f"peak {r['encode_peak_gib']:.1f} GiB); decode {r['decode_s']:.3f} s "
              f"({r['decode_latent_videos_per_s']:.2f}/s, peak {r['decode_peak_gib']:.1f} GiB)", flush=True)
        del official
        torch.cuda.empty_cache()
    torch.manual_seed(0)
    tiny = Tokenizer.from_config("tiny").cuda().to(torch.bfloat16).eval().requires_grad_(False)
    result["tiny"] = {"parameters": tiny.num_parameters(), "dtype": "bfloat16",
                      **bench_inference(tiny, args.tiny_batch, 17, 176, 320, args.repeats)}
    r = result["tiny"]
    peak = max(r["encode_peak_gib"], r["decode_peak_gib"])
    print(f"tiny ({r['parameters'] / 1e6:.2f} M, bf16) {args.tiny_batch}×17×176×320: "
          f"encode {r['encode_s'] * 1e3:.1f} ms ({r['encode_latent_videos_per_s']:.0f} latent videos/s), "
          f"decode {r['decode_s'] * 1e3:.1f} ms ({r['decode_latent_videos_per_s']:.0f}/s), peak {peak:.2f} GiB",
          flush=True)
    del tiny
    result["tiny_train"] = bench_train_step(args.train_batch, args.repeats)
    r = result["tiny_train"]
    print(f"tiny training step (bf16 autocast, AdamW) batch {r['batch']}×17×176×320: {r['s_per_step'] * 1e3:.0f} ms "
          f"({r['videos_per_s']:.0f} videos/s), peak {r['peak_gib']:.1f} GiB", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
