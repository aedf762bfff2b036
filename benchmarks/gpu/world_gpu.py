"""World examples per second on CUDA (target, issue 4: ≥ 20 ``tiny`` examples/s on an H100).

    PYTHONPATH=src python3 benchmarks/gpu/world_gpu.py [--batch 16,64] [--iters 3] [--workers 12] [--dynamic]
        [--max-pixels 16777216,67108864] [--compile-after] [--profile] [--check] [--json out.json]

Worlds and cameras are generated on the CPU (deterministic per seed, same on every machine) by a pool
of worker processes; all frames of a batch of examples are ray-cast in one batched call on the GPU.
Prints the GPU rendering rate per batch size (``--batch`` takes a comma list), the CPU sampling rate of the
pool (timed once its workers have started and imported torch: the steady rate a data loader sees), their
pipelined minimum (what a training loop with data-loader workers sees), peak GPU memory, and (``--check``) the
CPU/GPU difference of one example. ``--compile-after`` then times the largest batch again with the kernels
through ``torch.compile`` (``LYRA_WORLD_COMPILE=1``, with the last ``--max-pixels``; its warm-up includes
compiling; it runs last, and the JSON is rewritten after every stage); ``--profile`` lists the
CUDA kernels of one batch of the smallest size by GPU time, the GPU time of each rendering stage (caster,
textures, lighting, ...), and counts the launches and host syncs;
``--max-pixels`` (a comma list) sets the pixels rendered per chunk: the first for every run, the others time
the largest batch again (larger chunks: fewer launches, more memory; the images do not change). Exits
quietly without CUDA.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time


def _sample(args: tuple[int, str, bool, str]):
    import torch

    torch.set_num_threads(1)
    from lyra.world.sample import sample_world

    seed, preset, dynamic, style = args
    return sample_world(seed, preset, dynamic, style=style)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _label_stages():
    """Wrap the renderer's stages in profiler ranges ``world/<stage>`` (GPU time per stage; nested ranges
    include their children: the traces of the shadow maps are inside ``shadow_maps``). Returns the undo."""
    import functools
    import importlib

    from torch.profiler import record_function

    render = importlib.import_module("lyra.world.render")
    lighting = importlib.import_module("lyra.world.lighting")
    sites = [(render, "trace", None), (render, "cull", "cull"), (render, "surface", "surface"),
             (render, "sky_color", "sky"), (render, "shadow_maps", "shadow_maps"), (lighting, "albedo", "textures"),
             (lighting, "_lookup", "shadow_lookups"), (lighting, "_illuminate", "lighting"),
             (lighting, "trace", "trace_shadow")]
    undo = []
    for mod, name, label in sites:
        f = getattr(mod, name)

        @functools.wraps(f)
        def wrapped(*a, _f=f, _label=label, **k):
            lab = _label or ("trace_primary" if a[1].R > 4 else "trace_antialias")  # (views, rays, ...)
            with record_function("world/" + lab):
                return _f(*a, **k)

        setattr(mod, name, wrapped)
        undo.append((mod, name, f))
    return lambda: [setattr(m, n, f) for m, n, f in undo]


def _dump(res: dict, path: str | None) -> None:
    """Write the results so far (after every stage: a run cut short still leaves what it measured)."""
    if path:
        import json

        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f, indent=2)
        os.replace(tmp, path)


def _render_rate(render_samples, batches, dev, iters: int,
                 max_pixels: int | None = None) -> tuple[float, list[float], float, float]:
    """(median examples/s, per-batch rates, warm-up seconds, peak GiB) over ``batches[1:]`` after ``batches[0]``."""
    import functools

    import torch

    render_samples = functools.partial(render_samples, max_pixels=max_pixels)
    cuda = dev.type == "cuda"
    _sync()
    t0 = time.perf_counter()
    render_samples(batches[0], dev)  # warm-up: CUDA context, allocator (and compiling, when on)
    _sync()
    warm = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rates = []
    for b in batches[1:iters + 1]:
        _sync()
        t0 = time.perf_counter()
        out = render_samples(b, dev)
        _sync()
        rates.append(len(b) / (time.perf_counter() - t0))
        assert out[0].videos.device.type == dev.type
    return statistics.median(rates), rates, warm, torch.cuda.max_memory_allocated(dev) / 2**30 if cuda else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", default="16", help="examples rendered per GPU call; a comma list times each "
                    "(default 16)")
    ap.add_argument("--iters", type=int, default=3, help="timed batches per size (default 3)")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2), help="CPU sampling processes")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--dynamic", action="store_true")
    ap.add_argument("--style", default="classic", choices=("classic", "photo"), help="world style (lyra.world.photo)")
    ap.add_argument("--first-seed", type=int, default=1_000_000, help="first seed (default: the train split)")
    ap.add_argument("--check", action="store_true", help="also compare one example with the CPU renderer")
    ap.add_argument("--compile", action="store_true", help="render with the kernels through torch.compile "
                    "(LYRA_WORLD_COMPILE=1, set after the sampling pool started, so sampling stays eager)")
    ap.add_argument("--compile-after", action="store_true", help="after the eager runs, time the largest batch "
                    "with torch.compile (LYRA_WORLD_COMPILE=1)")
    ap.add_argument("--profile", action="store_true", help="profile one batch of the smallest size")
    ap.add_argument("--max-pixels", default=None, help="pixels rendered per chunk (default: the renderer's, 2^24 on "
                    "CUDA); a comma list also times the largest batch with each further value")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--cpu-smoke", action="store_true", help="run on the CPU (tests this script; use --preset micro)")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available() and not args.cpu_smoke:
        print("world_gpu: no CUDA device, nothing to measure")
        return
    from lyra.world.sample import render_samples, sample_world

    sizes = sorted({int(b) for b in str(args.batch).split(",") if b.strip()})
    chunks: list[int | None] = [int(v) for v in str(args.max_pixels).split(",") if v.strip()] \
        if args.max_pixels else [None]
    n = max(sizes) * (args.iters + 1)
    seeds = [(args.first_seed + i, args.preset, args.dynamic, args.style) for i in range(n)]
    ctx = mp.get_context("spawn")
    t0 = time.perf_counter()
    with ctx.Pool(args.workers) as pool:
        pool.map(_sample, [(args.first_seed + 10_000_000 + i, args.preset, args.dynamic, args.style)
                           for i in range(args.workers)], chunksize=1)  # start the workers, import torch
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        samples = pool.map(_sample, seeds, chunksize=1)
    t_sample = time.perf_counter() - t0
    sample_rate = n / t_sample
    if args.compile:  # rendering only: set after the pool, so its workers sample eagerly
        os.environ["LYRA_WORLD_COMPILE"] = "1"
    dev = torch.device("cpu" if args.cpu_smoke else "cuda")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    res: dict = {"device": name, "torch": torch.__version__, "preset": args.preset, "dynamic": args.dynamic,
                 "style": args.style,
                 "cpu_sampling_per_s": round(sample_rate, 2), "workers": args.workers,
                 "pool_start_s": round(t_start, 2), "max_pixels": chunks[0], "render": {},
                 "command": "python3 " + " ".join(sys.argv)}
    print(f"device {name}; preset {args.preset}, {'dynamic' if args.dynamic else 'static'}; CPU sampling "
          f"{sample_rate:.1f} examples/s with {args.workers} worker processes (pool start {t_start:.1f} s, not "
          "counted)", flush=True)
    best = 0.0
    mode = "compiled" if args.compile else "eager"  # --compile: every run through torch.compile (warm-up compiles)
    for size in sizes:
        batches = [samples[i * size:(i + 1) * size] for i in range(args.iters + 1)]
        rate, rates, warm, peak = _render_rate(render_samples, batches, dev, args.iters, chunks[0])
        best = max(best, rate)
        res["render"][f"{mode}_batch{size}"] = {"median_per_s": round(rate, 2), "rates": [round(r, 2) for r in rates],
                                               "warmup_s": round(warm, 2), "peak_gib": round(peak, 2)}
        print(f"GPU render, batch {size:>3}: {rate:6.1f} examples/s (median of {len(rates)}; "
              + ", ".join(f"{r:.1f}" for r in rates) + f"; warm-up batch {warm:.1f} s; peak {peak:.1f} GiB)",
              flush=True)
        res["pipelined_per_s"] = round(min(best, sample_rate), 2)
        _dump(res, args.json)
    for mp_ in chunks[1:]:
        size = sizes[-1]
        batches = [samples[i * size:(i + 1) * size] for i in range(args.iters + 1)]
        rate, rates, warm, peak = _render_rate(render_samples, batches, dev, args.iters, mp_)
        best = max(best, rate)
        res["render"][f"{mode}_batch{size}_max_pixels{mp_}"] = {
            "median_per_s": round(rate, 2), "rates": [round(r, 2) for r in rates], "warmup_s": round(warm, 2),
            "peak_gib": round(peak, 2)}
        print(f"GPU render, batch {size:>3}, {mp_:,} pixels per chunk: {rate:6.1f} examples/s ("
              + ", ".join(f"{r:.1f}" for r in rates) + f"; peak {peak:.1f} GiB)", flush=True)
        res["pipelined_per_s"] = round(min(best, sample_rate), 2)
        _dump(res, args.json)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        size = sizes[0]
        unlabel = _label_stages()
        _sync()
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            render_samples(samples[:size], dev, max_pixels=chunks[0])
            _sync()
        wall = time.perf_counter() - t0
        unlabel()
        try:
            table = prof.key_averages().table(sort_by="device_time_total", row_limit=15)
        except (KeyError, AttributeError, ValueError):
            table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=15)
        events = prof.key_averages()
        launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel",
                                                            "cudaLaunchKernelExC"))
        syncs = sum(e.count for e in events if "Synchronize" in e.key or e.key == "cudaMemcpyAsync")
        gpu_us = sum(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0)) for e in events)
        stages = {}
        for e in events:
            if e.key.startswith("world/"):
                dev_us = getattr(e, "device_time_total", getattr(e, "cuda_time_total", 0))
                stages[e.key[6:]] = {"calls": e.count, "gpu_s": round(dev_us / 1e6, 3),
                                     "cpu_s": round(e.cpu_time_total / 1e6, 3)}
        res["profile"] = {"batch": size, "kernel_launches": launches, "syncs_and_copies": syncs,
                          "wall_s_profiled": round(wall, 3), "gpu_busy_s": round(gpu_us / 1e6, 3),
                          "stages": stages, "top_kernels": table.splitlines()[:20]}
        print(f"profile of one batch of {size}: {launches:,} kernel launches, {syncs:,} syncs/copies; GPU busy "
              f"{gpu_us / 1e6:.3f} s of {wall:.3f} s wall (profiler on)")
        for k, v in stages.items():
            print(f"  stage {k:<28} {v['calls']:>4} calls  GPU {v['gpu_s']:.3f} s  CPU {v['cpu_s']:.3f} s")
        print(table, flush=True)
        _dump(res, args.json)
    if args.check:
        os.environ["LYRA_WORLD_COMPILE"] = "1" if args.compile else "0"
        ws = sample_world(args.first_seed, args.preset, args.dynamic, style=args.style)
        g = render_samples([ws], dev, max_pixels=chunks[0])[0]
        c = render_samples([ws], "cpu")[0]
        diff = (g.videos.cpu() - c.videos).abs()
        d_g, d_c = g.depths.cpu(), c.depths
        both = torch.isfinite(d_g) & torch.isfinite(d_c)
        rel = ((d_g - d_c).abs() / d_c)[both]
        print(f"CPU vs GPU   : mean |rgb diff| {diff.mean():.2e}, max {diff.max():.3f}; depth rel diff < 1e-4 on "
              f"{(rel < 1e-4).float().mean() * 100:.2f} % of pixels")
        res["cpu_vs_gpu"] = {"mean_abs_rgb": float(diff.mean()), "max_abs_rgb": float(diff.max()),
                             "depth_within_1e-4": float((rel < 1e-4).float().mean())}
        _dump(res, args.json)
    if args.compile_after:
        os.environ["LYRA_WORLD_COMPILE"] = "1"
        size = sizes[-1]
        batches = [samples[i * size:(i + 1) * size] for i in range(args.iters + 1)]
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            rate, rates, warm, peak = _render_rate(render_samples, batches, dev, args.iters, chunks[-1])
        fell_back = [str(w.message) for w in caught if "torch.compile unavailable" in str(w.message)]
        best = max(best, rate)
        res["render"][f"compiled_batch{size}"] = {"median_per_s": round(rate, 2),
                                                  "rates": [round(r, 2) for r in rates], "max_pixels": chunks[-1],
                                                  "warmup_incl_compile_s": round(warm, 2), "peak_gib": round(peak, 2),
                                                  "fell_back_to_eager": fell_back[:1]}
        if fell_back:
            print(f"torch.compile fell back to eager: {fell_back[0]}")
        print(f"GPU render, batch {size:>3}, torch.compile: {rate:6.1f} examples/s ("
              + ", ".join(f"{r:.1f}" for r in rates) + f"; warm-up batch incl. compiling {warm:.1f} s)", flush=True)
    res["pipelined_per_s"] = round(min(best, sample_rate), 2)
    print(f"pipelined    : {min(best, sample_rate):6.1f} examples/s (best render rate vs CPU sampling; target >= 20)")
    _dump(res, args.json)


if __name__ == "__main__":
    main()
