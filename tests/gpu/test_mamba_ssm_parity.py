"""On the GPU: the torch SSD path in fp32/bf16 against float64, and against mamba_ssm's fused Triton kernel.

Run on the device:  python -m pytest -q -m gpu tests/gpu/test_mamba_ssm_parity.py
(with ``LYRA_MAMBA_SSM_SRC=.wheels/mamba_ssm_src`` to use the kernels of an unpacked mamba_ssm sdist).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lyra.student import LatentDecoder
from lyra.student.mamba2 import BiMamba2, _mamba_ssm_scan, mamba_ssm_available, ssd_chunked

pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
needs_kernel = pytest.mark.skipif(not (torch.cuda.is_available() and mamba_ssm_available()),
                                  reason="needs CUDA and mamba_ssm's Triton SSD kernel")


def random_ssm(L=4096, h=16, p=64, g=1, n=256, seed=0, device="cuda"):
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(1, L, h, p, device=device, generator=gen)
    dt_raw = torch.randn(1, L, h, device=device, generator=gen) - 3
    dt_bias = torch.rand(h, device=device, generator=gen) - 2
    A = -torch.exp(torch.rand(h, device=device, generator=gen) * 2)
    B = torch.randn(1, L, g, n, device=device, generator=gen) / n**0.5
    C = torch.randn(1, L, g, n, device=device, generator=gen) / n**0.5
    D = torch.randn(h, device=device, generator=gen)
    return x, dt_raw, dt_bias, A, B, C, D


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@needs_cuda
@pytest.mark.parametrize("chunk", [64, 128, 256])
def test_torch_ssd_on_cuda_against_float64(chunk):
    x, dt_raw, dt_bias, A, B, C, D = random_ssm()
    dt = F.softplus(dt_raw + dt_bias)
    ref = ssd_chunked(x.double(), dt.double(), A.double(), B.double(), C.double(), chunk, D.double())
    y32 = ssd_chunked(x, dt, A, B, C, chunk, D)
    assert rel_err(y32, ref) < 1e-4
    with torch.no_grad():
        y16 = ssd_chunked(x.bfloat16(), dt, A, B.bfloat16(), C.bfloat16(), chunk, D)
    assert y16.dtype == torch.bfloat16
    assert rel_err(y16, ref) < 2e-2


@needs_kernel
def test_mamba_ssm_kernel_matches_torch_ssd():
    kernel = _mamba_ssm_scan()
    x, dt_raw, dt_bias, A, B, C, D = random_ssm()
    dt = F.softplus(dt_raw + dt_bias)
    ref = ssd_chunked(x.double(), dt.double(), A.double(), B.double(), C.double(), 128, D.double())
    y = kernel(x, dt_raw, A, B, C, 128, D=D, dt_bias=dt_bias, dt_softplus=True)
    assert rel_err(y, ref) < 5e-3  # the kernel's fp32 dots may run in TF32
    yb = kernel(x.bfloat16(), dt_raw, A, B.bfloat16(), C.bfloat16(), 128, D=D, dt_bias=dt_bias, dt_softplus=True)
    yt = ssd_chunked(x.bfloat16(), dt, A, B.bfloat16(), C.bfloat16(), 128, D)
    assert rel_err(yb, ref) < 2e-2 and rel_err(yt, ref) < 2e-2


@needs_kernel
def test_mixer_backends_agree_with_gradients():
    torch.manual_seed(0)
    mixer = BiMamba2(512, d_state=256, headdim=64, chunk_size=128).cuda()
    u = torch.randn(1, 3000, 512, device="cuda", requires_grad=True)
    outs = {}
    for backend in ("torch", "mamba_ssm"):
        mixer.backend = backend
        mixer.zero_grad()
        u.grad = None
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = mixer(u)
        y.float().pow(2).mean().backward()
        outs[backend] = (y.detach(), u.grad.clone(), mixer.mamba_scans[1].A_log.grad.clone())
    for a, b in zip(outs["torch"], outs["mamba_ssm"], strict=True):
        assert rel_err(a, b) < 3e-2


@needs_cuda
def test_compile_backend_matches_torch():
    torch.manual_seed(0)
    mixer = BiMamba2(128, d_state=64, headdim=32, chunk_size=64).cuda()
    u = torch.randn(1, 2048, 128, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        mixer.backend = "torch"
        ref = mixer(u)
        mixer.backend = "compile"
        y = mixer(u)
    assert rel_err(y, ref) < 1e-2


@needs_cuda
def test_tiny_decoder_bf16_on_cuda_matches_fp32_cpu():
    torch.manual_seed(0)
    model = LatentDecoder("tiny").eval()
    g = torch.Generator().manual_seed(0)
    lat = torch.randn(1, 6, 16, 3, 22, 40, generator=g)
    pl = torch.randn(1, 6, 32, 3, 22, 40, generator=g)
    from lyra.geometry import Cameras

    cams = Cameras.from_fov(50.0, 320, 176, torch.eye(4).expand(1, 6, 17, 4, 4))
    with torch.no_grad():
        ref = model(lat, cams, pl)
        model.cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(lat.cuda(), cams.to("cuda"), pl.cuda())
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert rel_err(out.cpu()[..., 3:], ref[..., 3:]) < 3e-2  # activations (positions: distance up to 500)
    assert rel_err(out.cpu()[..., :3], ref[..., :3]) < 3e-2
