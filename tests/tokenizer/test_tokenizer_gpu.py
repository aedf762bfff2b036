"""The tokenizer on CUDA: same results as the CPU (fp32), finite in bf16, and one bf16 training step."""

from __future__ import annotations

import pytest
import torch

from lyra.tokenizer import Tokenizer
from lyra.train.recipes.tokenizer import reconstruction_loss

pytestmark = pytest.mark.gpu
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
def test_cuda_matches_cpu_and_bf16_runs():
    torch.manual_seed(0)
    tok = Tokenizer.from_config("tiny").eval().requires_grad_(False)
    video = torch.rand(2, 17, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z_cpu = tok.encode(video)
        y_cpu = tok.decode(z_cpu)
        tok.cuda()
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        z_gpu = tok.encode(video.cuda())
        y_gpu = tok.decode(z_gpu)
        assert torch.allclose(z_gpu.cpu(), z_cpu, atol=1e-3, rtol=1e-3)
        assert torch.allclose(y_gpu.cpu(), y_cpu, atol=1e-3)
        tok.to(torch.bfloat16)
        z16 = tok.encode(video.cuda())
        assert z16.dtype == torch.float32 and torch.isfinite(z16).all()
        assert (z16.cpu() - z_cpu).abs().mean() < 0.05 * z_cpu.abs().mean() + 1e-3


@cuda
def test_bf16_training_step_reduces_loss():
    torch.manual_seed(0)
    vae = Tokenizer.from_config("tiny").vae.cuda().train()
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    video = torch.rand(4, 9, 3, 64, 64, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    losses = []
    for _ in range(20):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss, _ = reconstruction_loss(vae, video)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0]
