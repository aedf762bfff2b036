"""The bidirectional Mamba-2 mixer: the chunked SSD scan against the defining recurrence (float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lyra.errors import ConfigError
from lyra.student.mamba2 import (
    BiMamba2,
    Mamba2Block,
    _segsum,
    causal_depthwise_conv1d,
    ssd_chunked,
    ssd_sequential,
)


def random_ssm(b=2, L=53, h=4, p=3, g=1, n=5, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, L, h, p, generator=gen, dtype=dtype)
    dt = F.softplus(torch.randn(b, L, h, generator=gen, dtype=dtype) - 1)
    A = -torch.exp(torch.randn(h, generator=gen, dtype=dtype))
    B = torch.randn(b, L, g, n, generator=gen, dtype=dtype)
    C = torch.randn(b, L, g, n, generator=gen, dtype=dtype)
    D = torch.randn(h, generator=gen, dtype=dtype)
    return x, dt, A, B, C, D


def naive_recurrence(x, dt, A, B, C, D):
    """h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_tᵀ, y_t = h_t C_t + D x_t, written out per head and step."""
    b, L, h, p = x.shape
    g, n = B.shape[-2:]
    y = torch.zeros_like(x)
    for bi in range(b):
        for hi in range(h):
            gi = hi // (h // g)
            state = torch.zeros(p, n, dtype=x.dtype)
            for t in range(L):
                state = math.exp(float(dt[bi, t, hi] * A[hi])) * state \
                    + dt[bi, t, hi] * torch.outer(x[bi, t, hi], B[bi, t, gi])
                y[bi, t, hi] = state @ C[bi, t, gi] + D[hi] * x[bi, t, hi]
    return y


def test_segsum_closed_form():
    a = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    s = _segsum(a)
    for i in range(4):
        for j in range(4):
            want = a[j + 1: i + 1].sum().item() if j <= i else -math.inf
            assert s[i, j].item() == pytest.approx(want)


def test_sequential_reference_is_the_recurrence():
    args = random_ssm(b=1, L=9, h=2, p=2, g=1, n=3)
    assert torch.allclose(ssd_sequential(*args), naive_recurrence(*args), atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 5, 16, 64])
@pytest.mark.parametrize("groups", [1, 2])
def test_chunked_scan_matches_recurrence_float64(chunk, groups):
    x, dt, A, B, C, D = random_ssm(L=53, h=4, g=groups)
    ref = naive_recurrence(x, dt, A, B, C, D)
    y = ssd_chunked(x, dt, A, B, C, chunk_size=chunk, D=D)
    assert y.dtype == torch.float64
    assert (y - ref).abs().max().item() <= 1e-6
    with torch.no_grad():  # the inference path works in place
        assert (ssd_chunked(x, dt, A, B, C, chunk_size=chunk, D=D) - ref).abs().max().item() <= 1e-6


def test_chunked_scan_long_sequence_recursive_state_passing():
    # chunk 1 over 1100 steps: 1100 chunks → two levels of blocked state passing (blocks of 32).
    x, dt, A, B, C, D = random_ssm(b=1, L=1100, h=2, p=2, n=3, seed=3)
    dt = dt * 0.05  # slow decay: early inputs still matter at the end
    ref = ssd_sequential(x, dt, A, B, C, D)
    y = ssd_chunked(x, dt, A, B, C, chunk_size=1, D=D)
    assert (y - ref).abs().max().item() <= 1e-6
    with torch.no_grad():
        assert (ssd_chunked(x, dt, A, B, C, chunk_size=1, D=D) - ref).abs().max().item() <= 1e-6
    assert (ssd_chunked(x, dt, A, B, C, chunk_size=64, D=D) - ref).abs().max().item() <= 1e-6


def test_chunked_scan_gradients_match_recurrence():
    args = [t.requires_grad_() for t in random_ssm(b=1, L=23, h=2, p=2, n=3, seed=5)]
    w = torch.randn(1, 23, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g_ref = torch.autograd.grad((ssd_sequential(*args) * w).sum(), args)
    g_new = torch.autograd.grad((ssd_chunked(*args[:5], chunk_size=4, D=args[5]) * w).sum(), args)
    for a, b in zip(g_ref, g_new, strict=True):
        assert torch.allclose(a, b, atol=1e-9)


def test_float32_scan_close_to_float64():
    args = random_ssm(L=300, seed=7)
    ref = ssd_chunked(*args[:5], chunk_size=64, D=args[5])
    y32 = ssd_chunked(*[a.float() for a in args[:5]], chunk_size=64, D=args[5].float())
    assert y32.dtype == torch.float32
    assert (y32.double() - ref).abs().max().item() < 1e-4 * ref.abs().max().item()


def test_causal_depthwise_conv_matches_conv1d():
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 6, 4, groups=6, padding=3).double()
    x = torch.randn(2, 11, 6, dtype=torch.float64)
    ref = conv(x.transpose(1, 2))[..., :11].transpose(1, 2)
    assert torch.allclose(causal_depthwise_conv1d(x, conv.weight, conv.bias), ref, atol=1e-14)
    # causal: output t does not see inputs after t
    x2 = x.clone()
    x2[:, 7:] += 1.0
    out1, out2 = (causal_depthwise_conv1d(v, conv.weight, conv.bias) for v in (x, x2))
    assert torch.equal(out1[:, :7], out2[:, :7])


def naive_mixer(mixer: BiMamba2, u: torch.Tensor) -> torch.Tensor:
    """The released bidirectional mixer written out: flip the whole in_proj output for the reverse scan,
    conv + SiLU, the recurrence, gated RMSNorm, flip back, sum, out_proj."""
    d_inner, n, g, h = mixer.d_inner, mixer.d_state, mixer.ngroups, mixer.nheads
    zxbcdt = u @ mixer.in_proj.weight.T
    out = 0
    for i, scan in enumerate(mixer.mamba_scans):
        seq = zxbcdt if i == 0 else zxbcdt.flip(1)
        z, xBC, dt = seq.split([d_inner, d_inner + 2 * g * n, h], dim=-1)
        L = xBC.shape[1]
        k = scan.conv1d.weight.shape[-1]
        xBC = F.silu(F.conv1d(xBC.transpose(1, 2), scan.conv1d.weight, scan.conv1d.bias, padding=k - 1,
                              groups=xBC.shape[-1])[..., :L].transpose(1, 2))
        x, B, C = xBC.split([d_inner, g * n, g * n], dim=-1)
        delta = F.softplus(dt + scan.dt_bias)
        y = naive_recurrence(x.reshape(*x.shape[:2], h, -1), delta, -torch.exp(scan.A_log),
                             B.reshape(*B.shape[:2], g, n), C.reshape(*C.shape[:2], g, n), scan.D)
        y = y.reshape(*y.shape[:2], d_inner) * F.silu(z)
        y = y / torch.sqrt(y.pow(2).mean(-1, keepdim=True) + 1e-5) * scan.norm.weight
        out = out + (y if i == 0 else y.flip(1))
    return out @ mixer.out_proj.weight.T


def test_bidirectional_mixer_matches_naive_float64():
    torch.manual_seed(0)
    mixer = BiMamba2(8, d_state=4, d_conv=4, expand=2, headdim=4, chunk_size=8, backend="torch").double()
    with torch.no_grad():  # non-trivial norm weights and D
        for scan in mixer.mamba_scans:
            scan.norm.weight.uniform_(0.5, 1.5)
            scan.D.uniform_(-1, 1)
    u = torch.randn(2, 37, 8, dtype=torch.float64)
    with torch.no_grad():
        assert (mixer(u) - naive_mixer(mixer, u)).abs().max().item() <= 1e-6


def test_state_dict_names_of_the_mixer():
    names = set(BiMamba2(16, d_state=4, headdim=8).state_dict())
    per_scan = {"dt_bias", "A_log", "D", "conv1d.weight", "conv1d.bias", "norm.weight"}
    want = {"in_proj.weight", "out_proj.weight"} | {f"mamba_scans.{i}.{k}" for i in (0, 1) for k in per_scan}
    assert names == want


def test_bidirectional_sees_the_future_forward_only_does_not():
    torch.manual_seed(0)
    u = torch.randn(1, 20, 8, dtype=torch.float64, requires_grad=True)
    for bidirectional, expect_future in ((True, True), (False, False)):
        mixer = BiMamba2(8, d_state=4, headdim=4, chunk_size=8, bidirectional=bidirectional).double()
        (grad,) = torch.autograd.grad(mixer(u)[0, 3].sum(), u)
        assert (grad[0, 4:].abs().sum().item() > 0) == expect_future
        assert grad[0, :4].abs().sum().item() > 0


def test_block_is_pre_norm_residual():
    torch.manual_seed(0)
    blk = Mamba2Block(8, d_state=4, headdim=4, chunk_size=8).double()
    x = torch.randn(1, 10, 8, dtype=torch.float64)
    with torch.no_grad():
        normed = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
        assert torch.allclose(blk(x), x + blk.mamba(normed), atol=1e-12)


def test_backend_choice_errors():
    mixer = BiMamba2(8, d_state=4, headdim=4, backend="nope")
    with pytest.raises(ConfigError, match="unknown SSD backend"):
        mixer(torch.randn(1, 4, 8))
    if not torch.cuda.is_available():
        mixer.backend = "mamba_ssm"
        with pytest.raises(ConfigError, match="mamba_ssm"):
            mixer(torch.randn(1, 4, 8))
