"""One table from several ``lyra eval teacher`` reports, on the worlds they share (issue 18 item 2, filled anchor).

    python docs/bench/teacher_filled/compare.py NAME=teacher_eval.json [NAME=...] [--worlds 0,1,2,3]

Each report's per-world rows are restricted to the given test seeds (default: those every report holds) and summarised
with the benchmark's own :func:`lyra.eval.teacher_benchmark.summarize`, so that a 32-world report and a 4-world one are
compared on the same worlds. Prints a markdown table: far PSNR / SSIM / GMSD / sharpness, input-view PSNR, and the
issue's margins (holes − filled warp, visible − tokenizer ceiling).
"""

from __future__ import annotations

import argparse
import json

from lyra.eval.teacher_benchmark import summarize


def fmt(m: dict) -> str:
    """Far-view PSNR / SSIM / GMSD / sharpness of one system."""
    return f"{m['psnr']:.2f} / {m['ssim']:.3f} / {m['gmsd']:.3f} / {m['sharpness']:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("reports", nargs="+", metavar="NAME=JSON")
    p.add_argument("--worlds", default=None, help="comma-separated test seeds (default: the common ones)")
    a = p.parse_args()
    reports = {n: json.load(open(f)) for n, f in (r.rsplit("=", 1) for r in a.reports)}
    common = set.intersection(*({w["seed"] for w in r["worlds"]} for r in reports.values()))
    seeds = sorted(int(s) for s in a.worlds.split(",")) if a.worlds else sorted(common)
    print(f"test worlds {seeds}\n")
    print("| teacher | steps | far PSNR / SSIM / GMSD / sharpness | input view PSNR | holes − filled warp | "
          "visible − ceiling |")
    print("|---|---|---|---|---|---|")
    first, ceilings = True, set()
    for name, r in reports.items():
        rows = [w for w in r["worlds"] if w["seed"] in seeds]
        mean, gain = summarize(rows)
        far, inp = mean["far"], mean["input"]
        steps = r.get("setting", {}).get("steps", "?")
        t = far["teacher"]
        print(f"| {name} | {steps} | {fmt(t)} | {inp['teacher']['psnr']:.2f} | "
              f"{gain['disoccluded_vs_filled']:+.2f} | {gain['visible_vs_ceiling']:+.2f} |")
        if first:  # the baselines do not depend on the teacher (the ceiling does on its tokenizer)
            fw = far["filled_warp"]
            print(f"| (filled warp) | | {fmt(fw)} | {inp['filled_warp']['psnr']:.2f} | | |")
            first = False
        c = far["ceiling"]
        if round(c["psnr"], 2) not in ceilings:  # one row per tokenizer
            ceilings.add(round(c["psnr"], 2))
            print(f"| (tokenizer ceiling, {name}'s tokenizer) | | {fmt(c)} | {inp['ceiling']['psnr']:.2f} | | |")


if __name__ == "__main__":
    main()
