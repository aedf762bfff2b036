"""Probe (issue 18, inference only): a block-code teacher whose clean estimate is pinned to the warp latents on the
latent cells the warp fully sees, in every channel (a K < C teacher already takes its trailing channels from there;
this pins the generated ones too). Everything else is ``lyra eval teacher`` unchanged:

    python docs/bench/teacher_issue18/pinned_probe.py eval teacher --weights DIR --worlds 2 --steps 8 --out OUT

On a fully seen cell the returned velocity becomes (x_t − a)/max(t, 1/64), the straight path to the anchor a; the
sampler then lands on a there. Cells the warp sees only in part, and the holes, keep the network's velocity.
"""

from __future__ import annotations

import sys

import torch

from lyra.cli import main
from lyra.teacher import denoiser

_forward = denoiser.TeacherDenoiser.forward


def _pinned(self, noisy, t, conditions, context=None):  # type: ignore[no-untyped-def]
    v = _forward(self, noisy, t, conditions, context)
    full = (conditions.mask_latents >= 1.0 - 1e-4).float()
    a = conditions.latents.float() * full
    b = noisy.shape[0]
    tt = torch.as_tensor(t, dtype=torch.float32, device=noisy.device).reshape(-1).expand(b)
    to_anchor = (noisy.float() - a) / tt.clamp_min(denoiser.CLEAN_T_MIN).view(b, 1, 1, 1, 1)
    return full * to_anchor + (1.0 - full) * v


if __name__ == "__main__":
    denoiser.TeacherDenoiser.forward = _pinned  # type: ignore[method-assign]
    sys.exit(main(sys.argv[1:]))
