"""Fidelity of a trained student: ``python -m lyra.distill.evaluate --student DIR --data SDG_DIR [--gt]``.

The command line only: it maps arguments onto :mod:`lyra.eval.student_benchmark` (fidelity against the
teacher's frames on held-out SDG scenes and, with ``--gt``, against the ground truth of the regenerated
procedural worlds; dynamic students on dynamic data are chosen automatically), prints the results and
writes ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lyra.errors import LyraError
from lyra.eval.student_benchmark import evaluate_fidelity, evaluate_gt

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lyra.distill.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--student", required=True, metavar="DIR", help="student export folder (lyra train student)")
    p.add_argument("--data", required=True, metavar="SDG_DIR", help="held-out SDG folder")
    p.add_argument("--tokenizer", default=None, help="tokenizer preset (default: the student's)")
    p.add_argument("--scenes", type=int, default=8, help="scenes to evaluate (0: all)")
    p.add_argument("--frame-stride", type=int, default=1, help="every N-th frame of each trajectory (and the last)")
    p.add_argument("--gt", action="store_true", help="also compare with the regenerated worlds' ground truth")
    p.add_argument("--backend", choices=("auto", "torch", "gsplat"), default="auto")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: prints the results (and writes ``--json``)."""
    from lyra.cli._common import pick_device
    from lyra.distill.train import load_student
    from lyra.fileio import atomic_path
    from lyra.tokenizer import Tokenizer

    args = build_parser().parse_args(argv)
    try:
        device = pick_device(args.device)
        model, meta = load_student(args.student, device)
        tok = Tokenizer.from_preset(args.tokenizer or meta.get("tokenizer") or "tiny", device=device)
        scenes = args.scenes or None
        single = bool(meta.get("single_view", False))
        dynamic = bool(meta.get("dynamic", False))
        res: dict[str, Any] = {"student": str(args.student), "data": str(args.data), "dynamic": dynamic}
        res["fidelity"] = evaluate_fidelity(model, args.data, tok, scenes, args.frame_stride, args.backend, single,
                                            progress=not args.no_progress, dynamic=dynamic)
        f = res["fidelity"]
        print(f"fidelity vs teacher ({f['scenes']} scenes): PSNR {f['psnr']:.2f} dB, SSIM {f['ssim']:.3f}; "
              f"pruned to 20 %: {f['psnr_pruned']:.2f} dB / {f['ssim_pruned']:.3f} (cost {f['prune_cost_db']:.2f} dB)")
        if dynamic:
            print(f"  dynamic: {f['target_times']} target times per scene, {f['frames_per_target_time']} frames at "
                  f"each; PSNR on the forward trajectories' frames {f['psnr_forward']:.2f} dB, on the reversed "
                  f"ones' {f['psnr_reversed']:.2f} dB")
        if args.gt:
            res["gt"] = g = evaluate_gt(model, args.data, tok, scenes, args.frame_stride, args.backend, single,
                                        progress=not args.no_progress, dynamic=dynamic)
            print(f"vs ground truth ({g['scenes']} worlds, frames 1..T-1): student {g['psnr_student']:.2f} dB / "
                  f"{g['ssim_student']:.3f}, teacher {g['psnr_teacher']:.2f} / {g['ssim_teacher']:.3f}, "
                  + (f"filled warp {g['psnr_filled_warp']:.2f} / {g['ssim_filled_warp']:.3f}, "
                     if "psnr_filled_warp" in g else "")
                  + f"warp-only {g['psnr_warp']:.2f} / {g['ssim_warp']:.3f}")
            for group, systems in (g.get("table") or {}).items():
                print(f"  {group:>5}: " + "; ".join(
                    f"{name} PSNR {m['psnr']:.2f} SSIM {m['ssim']:.3f} GMSD {m['gmsd']:.3f} sharpness "
                    f"{m['sharpness']:.2f}" for name, m in systems.items()))
        if args.json:
            with atomic_path(args.json) as tmp:
                Path(tmp).write_text(json.dumps(res, indent=1) + "\n")
    except LyraError as e:
        print(f"lyra evaluate: error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
