"""CPU benchmark of a tokenizer: encode + decode of one trajectory, 17 × 176 × 320 (target ≤ 1 s on 2 threads).

Uses the shipped weights of ``--preset`` (default ``tiny``) when present, else a random initialisation of the
same network (the time does not depend on the weights); ``--weights DIR`` times a trained folder, ``--config
FILE`` a random network of the given ``AutoencoderKLCosmos`` kwargs (candidates). Prints the median over
``--repeats`` runs after one warm-up, and writes JSON with ``--json``.

    python benchmarks/tokenizer_cpu.py [--preset tiny] [--weights DIR | --config FILE] [--threads 2] [--repeats 5]
        [--frames 17] [--size 176x320] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import torch

from lyra.errors import WeightsError
from lyra.tokenizer import Tokenizer
from lyra.tokenizer.presets import PRESETS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny", choices=tuple(PRESETS))
    ap.add_argument("--weights", default=None, help="a trained tokenizer folder (default: the preset's)")
    ap.add_argument("--config", default=None, help="JSON file of AutoencoderKLCosmos kwargs (random weights)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--size", default="176x320")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)
    if args.config:
        with open(args.config) as f:
            tok = Tokenizer.from_config(json.load(f)).eval().requires_grad_(False)
        weights = f"random init of {args.config}"
    else:
        try:
            tok = Tokenizer.from_preset(args.preset, path=args.weights)
            weights = args.weights or "shipped"
        except WeightsError:
            if args.weights:
                raise
            tok = Tokenizer.from_config(args.preset).eval().requires_grad_(False)
            weights = "random init (no shipped weights)"
    video = torch.rand(1, args.frames, 3, h, w, generator=torch.Generator().manual_seed(0))
    enc, dec, cpu = [], [], []
    with torch.inference_mode():
        for i in range(args.repeats + 1):
            c0 = time.process_time()
            t0 = time.perf_counter()
            z = tok.encode(video)
            t1 = time.perf_counter()
            tok.decode(z)
            t2 = time.perf_counter()
            if i:  # the first run is a warm-up (oneDNN primitive creation)
                enc.append(t1 - t0)
                dec.append(t2 - t1)
                cpu.append(time.process_time() - c0)
    total = [a + b for a, b in zip(enc, dec, strict=True)]
    result = {
        "benchmark": "tokenizer_cpu",
        "video": [args.frames, h, w],
        "latents": list(z.shape[1:]),
        "parameters": tok.num_parameters(),
        "weights": weights,
        "threads": args.threads,
        "encode_s": statistics.median(enc),
        "decode_s": statistics.median(dec),
        "total_s": statistics.median(total),
        "total_min_s": min(total),
        # CPU seconds of all threads: on a machine shared with other jobs, cpu_s / threads estimates the
        # wall time the same work takes on idle cores.
        "cpu_s": statistics.median(cpu),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    result["preset"] = args.preset
    print(f"{args.preset} tokenizer ({result['parameters'] / 1e6:.2f} M params, {weights}), {args.frames}×{h}×{w} → "
          f"{tuple(result['latents'])} on {args.threads} threads: encode {result['encode_s']:.3f} s + decode "
          f"{result['decode_s']:.3f} s = {result['total_s']:.3f} s median (min {result['total_min_s']:.3f} s; "
          f"target ≤ 1 s); {result['cpu_s']:.2f} CPU-s (≈ {result['cpu_s'] / args.threads:.2f} s on idle cores), "
          f"peak RSS {result['peak_rss_mb']:.0f} MB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
