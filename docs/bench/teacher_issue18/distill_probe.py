"""How close a few-step student's samples come to its teacher's many-step samples (issue 18, item 3).

For the first N held-out test worlds (exact depth, one noise per world), sample the teacher with 32 Euler steps (the
distillation's target), the teacher with 4 steps (plain few-step sampling) and the student with 4 steps, and report:
the latent RMS distance of each 4-step sample to the teacher's 32-step sample, the PSNR of their decoded frames
against the 32-step frames, and against the ground truth PSNR and the sharpness ratio (lyra.eval.metrics), frames 1..
of all six trajectories.

    python docs/bench/teacher_issue18/distill_probe.py TEACHER_DIR STUDENT_DIR --world-preset micro --worlds 4
"""
from __future__ import annotations

import argparse
import json

import torch

from lyra.eval.metrics import psnr_pooled, sharpness_ratio
from lyra.teacher.denoiser import TeacherDenoiser
from lyra.teacher.sampler import sample
from lyra.tokenizer import Tokenizer
from lyra.train.recipes.teacher import prepare_example


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("teacher")
    ap.add_argument("student")
    ap.add_argument("--tokenizer", default="tiny")
    ap.add_argument("--world-preset", default="micro")
    ap.add_argument("--worlds", type=int, default=4)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import lyra.world as world

    tok = Tokenizer.from_preset(a.tokenizer)
    teacher = TeacherDenoiser.from_pretrained(a.teacher, dtype=torch.float32).eval()
    student = TeacherDenoiser.from_pretrained(a.student, dtype=torch.float32).eval()
    rows = []
    with torch.no_grad():
        for i, seed in enumerate(world.split_seeds("test")[: a.worlds]):
            ex = world.load_example(int(seed), a.world_preset, "cpu")
            _, cond = prepare_example(ex, tok)
            noise = torch.randn(cond.latents.shape, generator=torch.Generator().manual_seed(1000 + i))
            lat = {"teacher_32": sample(teacher, cond, steps=32, noise=noise, progress=False),
                   "teacher_4": sample(teacher, cond, steps=4, noise=noise, progress=False),
                   "student_4": sample(student, cond, steps=4, noise=noise, progress=False)}
            H, W = ex.videos.shape[-2:]
            vid = {k: tok.decode(tok.denormalize(v))[..., :H, :W] for k, v in lat.items()}
            gt = ex.videos.float()
            row = {"seed": int(seed)}
            for k in ("teacher_4", "student_4", "teacher_32"):
                row[k] = {"latent_rms_to_teacher_32": float((lat[k] - lat["teacher_32"]).square().mean().sqrt()),
                          "psnr_to_teacher_32": psnr_pooled(vid[k][:, 1:], vid["teacher_32"][:, 1:]),
                          "psnr_gt": psnr_pooled(vid[k][:, 1:], gt[:, 1:]),
                          "sharpness_gt": sharpness_ratio(vid[k][:, 1:].flatten(0, 1), gt[:, 1:].flatten(0, 1))}
            rows.append(row)
            print(json.dumps(row), flush=True)
    mean = {k: {m: sum(r[k][m] for r in rows) / len(rows) for m in rows[0][k] if m != "psnr_to_teacher_32" or
                k != "teacher_32"} for k in ("teacher_4", "student_4", "teacher_32")}
    out = {"teacher": a.teacher, "student": a.student, "world_preset": a.world_preset, "worlds": rows, "mean": mean}
    print(json.dumps(mean, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            f.write(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
