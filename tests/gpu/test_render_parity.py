"""Parity of the two render backends on CUDA: the torch reference vs gsplat (``RGB+ED``, classic).

Run on the GPU machine (gsplat JIT-builds its extension on first use, about a minute):
    python -m pytest -q -m gpu tests/gpu/test_render_parity.py
"""

from __future__ import annotations

import math

import pytest
import torch

from lyra.gaussians import Gaussians
from lyra.geometry import Cameras, look_at
from lyra.render import gsplat_available, render

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.skipif(not gsplat_available(), reason="needs the gsplat package"),
]

W, H, FOV = 320, 176, 55.0


def random_scene(n: int, seed: int, sh_degree: int = 0) -> Gaussians:
    """``n`` random Gaussians in the frustum of a camera at the origin looking down +z."""
    g = torch.Generator().manual_seed(seed)
    f = 0.5 * H / math.tan(math.radians(FOV) / 2)
    z = 1.5 + 8 * torch.rand(n, generator=g)
    u = (torch.rand(n, generator=g) * 1.2 - 0.1) * W
    v = (torch.rand(n, generator=g) * 1.2 - 0.1) * H
    means = torch.stack([(u - W / 2) / f * z, (v - H / 2) / f * z, z], -1)
    sigma_px = torch.exp(math.log(0.3) + math.log(30.0) * torch.rand(n, 3, generator=g))
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    k = (sh_degree + 1) ** 2 - 1
    sh_rest = 0.15 * torch.randn(n, k, 3, generator=g) if k else None
    return Gaussians(means, quats, sigma_px * (z / f)[:, None], 0.02 + 0.97 * torch.rand(n, generator=g),
                     torch.rand(n, 3, generator=g), sh_rest).to("cuda")


def cameras(shape: tuple[int, ...], seed: int) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    n = math.prod(shape)
    eye = 0.4 * torch.randn(n, 3, generator=g)
    eye[0] = 0.0
    c2w = look_at(eye, torch.tensor([0.0, 0.0, 5.0]).expand(n, 3)).reshape(*shape, 4, 4)
    return Cameras.from_fov(FOV, W, H, c2w).to("cuda")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.float() - b.float()).square().mean())
    return float("inf") if mse == 0 else -10 * math.log10(mse)


def check_parity(scene: Gaussians, cams: Cameras, **kw) -> None:
    ref = render(scene, cams, backend="torch", **kw)
    gs = render(scene, cams, backend="gsplat", **kw)
    assert gs.backend == "gsplat" and ref.backend == "torch"
    assert gs.rgb.shape == ref.rgb.shape
    p = psnr(gs.rgb, ref.rgb)
    print(f"PSNR rgb {p:.1f} dB, alpha max |Δ| {float((gs.alpha - ref.alpha).abs().max()):.2e}")
    assert p >= 40.0
    assert float((gs.alpha - ref.alpha).abs().mean()) < 1e-3
    both = (gs.alpha > 0.5) & (ref.alpha > 0.5)
    assert both.float().mean() > 0.3
    rel = ((gs.depth - ref.depth).abs() / ref.depth.clamp_min(1e-6))[both]
    assert float(rel.mean()) < 2e-3 and float(rel.median()) < 1e-4


def test_parity_rgb_depth_alpha_single_camera():
    check_parity(random_scene(4000, seed=0), cameras((), seed=0))


def test_parity_sh_degree3_batched_cameras():
    check_parity(random_scene(3000, seed=1, sh_degree=3), cameras((2, 3), seed=1))


def test_parity_antialiased_and_near_far():
    check_parity(random_scene(3000, seed=2), cameras((2,), seed=2), near=3.0, far=8.0,
                 rasterize_mode="antialiased")


def test_gradients_agree():
    """Both backends are differentiable; their gradients point the same way (cosine > 0.98)."""
    base = random_scene(2000, seed=3)
    cams = cameras((), seed=3)
    target = torch.rand(H, W, 3, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    grads = {}
    for backend in ("torch", "gsplat"):
        params = {k: getattr(base, k).clone().requires_grad_(True) for k in ("means", "scales", "opacities",
                                                                                "colors")}
        g = Gaussians(params["means"], base.quats, params["scales"], params["opacities"], params["colors"])
        out = render(g, cams, backend=backend)
        ((out.rgb - target).square().mean() + 1e-3 * out.depth.mean()).backward()
        grads[backend] = {k: v.grad for k, v in params.items()}
    for k in grads["torch"]:
        a, b = grads["torch"][k].flatten(), grads["gsplat"][k].flatten()
        cos = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
        print(f"grad {k}: cosine {cos:.5f}")
        assert cos > 0.98, k
