"""Pictures of dynamic students against the ground truth, on held-out dynamic SDG scenes (issue 18, item 5).

    python docs/bench/dynamic_student/pictures.py DATA OUT.jpg NAME=STUDENT_DIR [NAME=STUDENT_DIR ...] \
        [--scenes 2] [--frames 8,16] [--view 1]

DATA is a dynamic SDG folder made with ``--store-gt`` (``lyra sdg DATA --dynamic --split val --store-gt ...``).
For each scene and each frame ``g`` of ``--frames``, one row at full size: the input video's frame ``g`` | every
student decoded at the time ``t_g`` and rendered at frame ``g`` of forward trajectory ``--view`` (pruned as
delivered, the latent head's Gaussians alone, as ``python -m lyra.distill.evaluate --gt`` scores them) | the
filled warp of input frame ``g`` | the teacher's frame | the ground truth. Uses the evaluation's own code
(:func:`lyra.eval.student_benchmark._gt_systems`), so the pictures are the frames behind its numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from lyra.eval.baselines import filled_warp
from lyra.eval.student_benchmark import _dataset, _forward_views, _gt_example, _gt_systems, _unit_rgb, _world_preset
from lyra.geometry import Cameras
from lyra.student import LatentDecoder
from lyra.student.inference import PRUNE_RATIO
from lyra.student.latents import LatentCache
from lyra.tokenizer import Tokenizer


def to_u8(x: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` in [0, 1] → ``[H, W, 3]`` BGR uint8."""
    a = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return a[..., ::-1].copy()


def label(img: np.ndarray, text: str) -> np.ndarray:
    cv2.rectangle(img, (0, 0), (8 + 7 * len(text), 14), (0, 0, 0), -1)
    cv2.putText(img, text, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return img


@torch.no_grad()
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("students", nargs="+", metavar="NAME=DIR")
    p.add_argument("--scenes", type=int, default=2)
    p.add_argument("--frames", default="8,16")
    p.add_argument("--view", type=int, default=1, help="which forward trajectory (index among the forward six)")
    a = p.parse_args()
    students = [s.split("=", 1) for s in a.students]
    frames = [int(f) for f in a.frames.split(",")]
    models = {n: LatentDecoder.from_pretrained(d, "cpu").eval() for n, d in students}
    first = next(iter(models.values()))
    tok = Tokenizer.from_preset(first.meta.get("tokenizer") or "tiny", device="cpu")
    ds = _dataset(a.data, True, first, tok)
    preset = _world_preset(ds)
    rows = []
    for i in range(min(a.scenes, len(ds))):
        s = ds[i]
        teacher = _unit_rgb(s["rgb"]).movedim(-1, -3)  # [V, T, 3, H, W]
        V, T, _, H, W = teacher.shape
        views = _forward_views(ds, V)
        gt, gt_cams, _ = _gt_example(int(s["world_seed"]), preset, H, W, torch.device("cpu"), dynamic=True)
        gt, gt_cams = gt[:len(views)].movedim(-1, -3), gt_cams[:len(views)]
        sdg_cams = Cameras(s["K"].float(), s["c2w"].float(), W, H)[views]
        outs = {}
        for n, m in models.items():
            student, warp, _ = _gt_systems(m, s, tok, ds, views, frames, sdg_cams, gt_cams, False, PRUNE_RATIO,
                                           "torch", LatentCache(tok, max_entries=64))
            outs[n] = student.rgb
        filled = filled_warp(warp).rgb
        video = _unit_rgb(s["input_video"]).movedim(-1, -3)
        v = a.view
        for j, g in enumerate(frames):
            cells = [label(to_u8(video[g]), f"scene {i} input frame {g}")]
            cells += [label(to_u8(outs[n][v, j]), n) for n, _ in students]
            cells += [label(to_u8(filled[v, j]), "filled warp"), label(to_u8(teacher[views[v], g]), "teacher"),
                      label(to_u8(gt[v, g]), f"GT frame {g}")]
            rows.append(cv2.hconcat(cells))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(a.out, cv2.vconcat(rows), [cv2.IMWRITE_JPEG_QUALITY, 92])
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
