"""End to end: latents → decoder → Gaussians → lyra.render → image loss, differentiable everywhere."""

from __future__ import annotations

import torch

from lyra.render import render
from lyra.student import LatentDecoder


def test_image_loss_reaches_latents_and_every_parameter(tiny_inputs):
    latents, cams, plucker = tiny_inputs
    torch.manual_seed(0)
    model = LatentDecoder("tiny")
    # The zero-initialised conditioning convs give their LayerNorm a zero input, whose weight then gets no
    # gradient: start them non-zero so that every parameter must receive one.
    with torch.no_grad():
        for emb in (model.patch_plucker_embed, model.patch_time_embed, model.patch_time_embed_tgt):
            emb.proj.weight.normal_(0.0, 0.05)
            emb.proj.bias.normal_(0.0, 0.05)
    g = torch.Generator().manual_seed(2)
    src_time = torch.randn(1, 1, 16, 2, 4, 6, generator=g)
    tgt_time = torch.randn(1, 1, 16, 1, 4, 6, generator=g)
    latents = latents.clone().requires_grad_()

    raw = model(latents, cams, plucker, src_time, tgt_time)
    (gaussians,) = model.to_gaussians(raw)
    out = render(gaussians, cams[0, :, 0], backend="torch")  # first frame of each view, 48×32
    assert out.rgb.shape == (2, 32, 48, 3)
    target = torch.rand(out.rgb.shape, generator=g)
    loss = (out.rgb - target).pow(2).mean()
    loss.backward()

    assert latents.grad is not None and torch.isfinite(latents.grad).all() and latents.grad.abs().sum() > 0
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert no_grad == []
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert bad == []
    zero = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert zero == []
