"""Where a 96-channel teacher's clean prediction fails: its x̂0 error by noise level t, on the fully seen latent
cells and in the rest (issue 18 diagnostic; CPU).

    python docs/bench/teacher_issue18/clean_error_by_t.py --weights DIR [--worlds 0 1] [--json OUT]

For each test world (exact depth) and each t of a fixed grid, one noise draw: x_t = (1 − t)·x0 + t·ε, the
denoiser's clean estimate x̂0 = x_t − t·v (the sampler's own algebra), and the mean squared error of x̂0 against
the target latents x0 (normalised units: 1 = the latents' variance per channel) on the fully seen cells (the
anchor's support) and on the others; beside it the error of the warp latents themselves on the fully seen cells
(what a network that adds nothing to the anchor scores there) and of predicting zeros (the mean) elsewhere.
"""

from __future__ import annotations

import argparse
import json

import torch

from lyra.seeds import mix_seed
from lyra.teacher.conditioning import Conditions
from lyra.teacher.denoiser import TeacherDenoiser
from lyra.tokenizer import Tokenizer
from lyra.train.recipes.teacher import prepare_example
from lyra.world import load_example

TIMES = (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True)
    p.add_argument("--worlds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.manual_seed(0)
    den = TeacherDenoiser.from_pretrained(a.weights, device="cpu", dtype=torch.float32).eval()
    tok = Tokenizer.from_preset(den.tokenizer_name or "tiny", device="cpu", max_batch=2)
    rows = []
    for s in a.worlds:
        ex = load_example(s, "tiny", "cpu", False)
        x0, cond = prepare_example(ex, tok)
        full = (cond.mask_latents >= 1.0 - 1e-4).expand_as(x0)
        seen_mse = float(((cond.latents - x0) ** 2)[full].mean())
        zero_mse = float((x0 ** 2)[~full].mean())
        g = torch.Generator().manual_seed(mix_seed(0, s, 23))
        for t in TIMES:
            eps = torch.randn(x0.shape, generator=g)
            xt = (1 - t) * x0 + t * eps
            with torch.no_grad():
                v = den(xt, torch.full((x0.shape[0],), t), Conditions(cond.latents, cond.mask_latents))
            x0_hat = xt - t * v.float()
            err = (x0_hat - x0) ** 2
            rows.append({"world": s, "t": t, "mse_seen": float(err[full].mean()), "mse_rest": float(err[~full].mean()),
                         "warp_mse_seen": seen_mse, "zero_mse_rest": zero_mse,
                         "seen_fraction": float(full.float().mean())})
            r = rows[-1]
            print(f"world {s} t {t:.2f}: x̂0 MSE seen {r['mse_seen']:.3f} (warp {seen_mse:.3f}), rest "
                  f"{r['mse_rest']:.3f} (zeros {zero_mse:.3f}); seen {100 * r['seen_fraction']:.0f} % of cells")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"weights": a.weights, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
