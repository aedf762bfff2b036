"""World examples per second on CUDA (target, issue 4: ≥ 20 ``tiny`` examples/s on an H100).

    PYTHONPATH=src python3 benchmarks/gpu/world_gpu.py [--batch 16] [--iters 3] [--workers 12] [--dynamic]

Worlds and cameras are generated on the CPU (deterministic per seed, same on every machine) by a pool
of worker processes; all frames of a batch of examples are ray-cast in one batched call on the GPU.
Prints the GPU rendering rate, the CPU sampling rate of the pool, their pipelined minimum (what a
training loop with data-loader workers sees), peak GPU memory, and (``--check``) the CPU/GPU
difference of one example. Exits quietly without CUDA.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time


def _sample(args: tuple[int, str, bool]):
    import torch

    torch.set_num_threads(1)
    from lyra.world.sample import sample_world

    seed, preset, dynamic = args
    return sample_world(seed, preset, dynamic)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=16, help="examples rendered per GPU call (default 16)")
    ap.add_argument("--iters", type=int, default=3, help="timed batches (default 3)")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2), help="CPU sampling processes")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--dynamic", action="store_true")
    ap.add_argument("--first-seed", type=int, default=1_000_000, help="first seed (default: the train split)")
    ap.add_argument("--check", action="store_true", help="also compare one example with the CPU renderer")
    ap.add_argument("--compile", action="store_true", help="torch.compile the kernels on CUDA too "
                    "(sets LYRA_WORLD_COMPILE=1)")
    args = ap.parse_args()
    if args.compile:
        os.environ["LYRA_WORLD_COMPILE"] = "1"
    import torch

    if not torch.cuda.is_available():
        print("world_gpu: no CUDA device, nothing to measure")
        return
    from lyra.world.sample import render_samples, sample_world

    n = args.batch * (args.iters + 1)
    seeds = [(args.first_seed + i, args.preset, args.dynamic) for i in range(n)]
    ctx = mp.get_context("spawn")
    t0 = time.perf_counter()
    with ctx.Pool(args.workers) as pool:
        samples = pool.map(_sample, seeds, chunksize=1)
    t_sample = time.perf_counter() - t0
    sample_rate = n / t_sample
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(dev)
    batches = [samples[i * args.batch:(i + 1) * args.batch] for i in range(args.iters + 1)]
    t0 = time.perf_counter()
    render_samples(batches[0], dev)  # warm-up: CUDA context, allocator
    torch.cuda.synchronize()
    warm = time.perf_counter() - t0
    torch.cuda.reset_peak_memory_stats()
    rates = []
    for b in batches[1:]:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = render_samples(b, dev)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        rates.append(len(b) / dt)
        assert out[0].videos.is_cuda
    frames = out[0].videos.shape[0] * out[0].videos.shape[1]
    size = f"{out[0].videos.shape[-1]}x{out[0].videos.shape[-2]}"
    render_rate = statistics.median(rates)
    print(f"device {name}; preset {args.preset} ({frames} frames {size} per example), "
          f"{'dynamic' if args.dynamic else 'static'}, batch {args.batch}")
    print(f"GPU render   : {render_rate:6.1f} examples/s (median of {args.iters}; per batch "
          + ", ".join(f"{r:.1f}" for r in rates) + f"; warm-up batch {warm:.1f} s)")
    print(f"CPU sampling : {sample_rate:6.1f} examples/s with {args.workers} worker processes")
    print(f"pipelined    : {min(render_rate, sample_rate):6.1f} examples/s (target >= 20)")
    print(f"peak GPU memory {torch.cuda.max_memory_allocated(dev) / 2**30:.2f} GiB")
    if args.check:
        ws = sample_world(args.first_seed, args.preset, args.dynamic)
        g = render_samples([ws], dev)[0]
        c = render_samples([ws], "cpu")[0]
        diff = (g.videos.cpu() - c.videos).abs()
        d_g, d_c = g.depths.cpu(), c.depths
        both = torch.isfinite(d_g) & torch.isfinite(d_c)
        rel = ((d_g - d_c).abs() / d_c)[both]
        print(f"CPU vs GPU   : mean |rgb diff| {diff.mean():.2e}, max {diff.max():.3f}; depth rel diff < 1e-4 on "
              f"{(rel < 1e-4).float().mean() * 100:.2f} % of pixels")


if __name__ == "__main__":
    main()
