"""As run for docs/benchmarks.md (issue 18): the shipped tiny on the 96 held-out videos, one video at a time on the
CPU (results written after each video). The videos: lyra.tokenizer.training.eval_videos("world", 16, 17, 176, 320,
"cpu") saved to /tmp/tok/base/test_vids.pt beforehand. Same numbers as `lyra tokenizer eval`."""
import json
import os
import sys

import torch

from lyra.eval.metrics import delta_e2000, psnr, srgb_to_lab, ssim
from lyra.tokenizer import Tokenizer

torch.set_num_threads(2)

vids = torch.load('/tmp/tok/base/test_vids.pt')  # 16 batches [6,17,3,176,320], worlds 0..15
allv = torch.cat(vids)
# saturation statistic of the held-out world videos (same generator as training)
lab = srgb_to_lab(allv[:, ::4].reshape(-1, 3, 176, 320))
chroma = torch.hypot(lab[:, 1], lab[:, 2])
rgb = allv[:, ::4]
sat = (rgb.amax(2) - rgb.amin(2)) / rgb.amax(2).clamp_min(1e-6)
stat = {"chroma_p99": float(chroma.flatten().kthvalue(int(0.99 * chroma.numel())).values),
        "chroma_max": float(chroma.max()), "frac_chroma_gt_60": float((chroma > 60).float().mean()),
        "frac_hsv_sat_gt_0.9_and_val_gt_0.5": float(((sat > 0.9) & (rgb.amax(2) > 0.5)).float().mean())}
# red patch (1,0,0) chroma for comparison
red = srgb_to_lab(torch.tensor([1.0, 0, 0]).view(3, 1, 1))
stat["chroma_pure_red"] = float(torch.hypot(red[1], red[2]))
print(json.dumps(stat), flush=True)
tok = Tokenizer.from_preset(sys.argv[1], max_batch=1)
order = [w * 6 + k for k in range(6) for w in range(16)]  # one trajectory of every world first
res = []
with torch.inference_mode():
    for i in order:
        v = allv[i:i + 1]
        rec = tok.roundtrip(v)
        res.append({"video": i, "psnr": float(psnr(rec[0], v[0]).clamp(max=100).mean()),
                    "ssim": float(ssim(rec[0], v[0]).mean()), "de": float(delta_e2000(rec[0], v[0]).mean())})
        n = len(res)
        out = {"saturation": stat, "videos": n, "psnr": sum(r["psnr"] for r in res) / n,
               "ssim": sum(r["ssim"] for r in res) / n, "delta_e2000": sum(r["de"] for r in res) / n, "per_video": res}
        json.dump(out, open(f"/tmp/tok/base/{sys.argv[1]}_inc.json.tmp", "w"))
        os.replace(f"/tmp/tok/base/{sys.argv[1]}_inc.json.tmp", f"/tmp/tok/base/{sys.argv[1]}_inc.json")
        print(n, round(out["psnr"], 3), round(out["ssim"], 4), round(out["delta_e2000"], 3), flush=True)
