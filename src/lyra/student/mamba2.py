"""Bidirectional Mamba-2 mixer (the student's sequence layer) in plain torch.

Parametrisation (Mamba-2 of state-spaces/mamba, as the Lyra release wires it; names match its state dict):

* ``in_proj``: ``Linear(d_model → 2·d_inner + 2·ngroups·d_state + nheads)``, no bias. Its output splits
  into ``z`` [d_inner] | ``xBC`` [d_inner + 2·ngroups·d_state] | ``dt`` [nheads].
* ``mamba_scans.0`` (forward) and ``mamba_scans.1`` (run on the time-reversed sequence, flipped back):
  each owns a depthwise causal ``conv1d`` over ``xBC`` (kernel ``d_conv``, with bias) followed by SiLU,
  ``dt_bias``, ``A_log``, ``D`` (one per head) and a gated RMSNorm ``norm`` (eps 1e-5). With
  ``Δ = softplus(dt + dt_bias)`` and ``A = −exp(A_log)``, per head and channel the SSM is::

      h_t = exp(Δ_t A) h_{t−1} + Δ_t x_t B_tᵀ        (h_t: [headdim, d_state])
      y_t = h_t C_t + D x_t

  and the scan's output is ``norm(y · silu(z))`` = RMSNorm over all ``d_inner`` channels, times weight.
* The two directions' outputs are **summed** and go through the shared ``out_proj`` ``Linear(d_inner →
  d_model)``, no bias.

The SSM runs as the chunked "state space duality" (SSD) algorithm: quadratic attention-like products inside
chunks of ``chunk_size`` tokens, a linear recurrence over chunk states between them (itself blocked, so no
Python loop over time and nothing quadratic in the sequence length). Backends (:data:`BACKENDS`): ``torch``
(eager), ``compile`` (each whole Mamba-2 block through ``torch.compile``, one graph shared by all blocks),
``mamba_ssm`` (its fused Triton SSD kernel ``mamba_chunk_scan_combined``; from the installed package, or from
an unpacked source tree named by ``$LYRA_MAMBA_SSM_SRC``), and ``auto``: the fastest path that works here
(:func:`auto_candidates`). On CUDA, ``auto`` tries ``compile`` (in inference, where Triton is there and the
sequence is long enough for compiling to pay: :data:`COMPILE_MIN_TOKENS`), then ``mamba_ssm`` (where it imports),
then ``torch``; a path that raises is reported once (a warning), never tried again in this process, and the next
one runs instead. In float64 and on the CPU ``auto`` is ``torch`` (the oracle of the tests).
:attr:`Mamba2Block.used_backend` says which path a block last ran.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.errors import ConfigError

#: SSD backends: "auto" (the fastest that works: :func:`auto_candidates`), "torch", "compile" (the torch path
#: through ``torch.compile``), "mamba_ssm" (required; error when missing).
BACKENDS = ("auto", "torch", "compile", "mamba_ssm")
#: ``auto`` compiles the Mamba blocks only for sequences of at least this many tokens (per batch element): below
#: it, compiling (tens of seconds on a cold cache) costs more than the faster forwards save.
COMPILE_MIN_TOKENS = 65536
#: Paths that raised in this process under ``auto`` (not tried again).
_FAILED: set[str] = set()


# --------------------------------------------------------------------------------------------- SSD core
def _segsum(a: Tensor) -> Tensor:
    """Stable segment sums: ``a`` [..., T] → [..., T, T] with ``out[i, j] = a[j+1] + … + a[i]`` for
    ``j ≤ i`` (0 on the diagonal) and ``−inf`` above it."""
    T = a.shape[-1]
    x = a[..., :, None].expand(*a.shape, T)  # x[..., i, j] = a[i]
    strict = torch.ones(T, T, dtype=torch.bool, device=a.device).tril(-1)
    x = x.masked_fill(~strict, 0.0)
    out = x.cumsum(-2)
    return out.masked_fill(~strict.logical_or(torch.eye(T, dtype=torch.bool, device=a.device)), -math.inf)


def _pass_states(u: Tensor, a: Tensor, block: int = 32) -> Tensor:
    """Inclusive linear recurrence over chunks: ``S_k = exp(a_k) S_{k−1} + u_k`` with ``S_{−1} = 0``.

    Args:
        u: chunk-local end states ``[N, c, F]`` (N independent sequences, e.g. batch × heads; float32/64).
        a: chunk log-decays ``[N, c]`` (≤ 0).
        block: chunks handled by one dense ``[block, block]`` decay product; longer sequences recurse on
            block totals (depth ⌈log_block c⌉), so the cost stays linear in ``c``.

    Returns:
        ``S`` ``[N, c, F]``: the state at the end of every chunk.
    """
    n, c, f = u.shape
    if c <= block:
        return torch.exp(_segsum(a)).to(u.dtype) @ u
    # a block length in [block/2, 2·block] that divides c avoids padding (a full copy of the states)
    fits = [s for s in range(max(2, block // 2), 2 * block + 1) if c % s == 0]
    if fits:
        block = min(fits, key=lambda s: abs(s - block))
    m = -(-c // block)
    pad = m * block - c
    if pad:
        u = F.pad(u, (0, 0, 0, pad))
        a = F.pad(a, (0, pad))
    ab = a.reshape(n, m, block)
    local = torch.exp(_segsum(ab)).to(u.dtype) @ u.reshape(n, m, block, f)  # inclusive within blocks
    carry = _pass_states(local[:, :, -1], ab.sum(-1), block)  # [N, m, F]: state at each block's end
    carry_in = torch.cat([torch.zeros_like(carry[:, :1]), carry[:, :-1]], 1)
    correction = torch.exp(ab.cumsum(-1)).to(u.dtype)[..., None] * carry_in[:, :, None]
    out = local.add_(correction) if not torch.is_grad_enabled() else local + correction
    return out.reshape(n, m * block, f)[:, :c]


def ssd_chunked(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk_size: int = 128,
    D: Tensor | None = None,
) -> Tensor:
    """The Mamba-2 SSM over a whole sequence, by the chunked SSD algorithm.

    Computes ``h_t = exp(dt_t A) h_{t−1} + dt_t x_t B_tᵀ``, ``y_t = h_t C_t (+ D x_t)`` from ``h_{−1} = 0``.

    Args:
        x: inputs ``[b, L, h, p]`` (h heads of p channels); its dtype is the compute dtype of the
            matrix products (bf16 on GPU, float64 in tests).
        dt: step sizes ``[b, L, h]``, already positive (after softplus and bias).
        A: ``[h]``, negative.
        B, C: ``[b, L, g, n]``; head ``i`` uses group ``i // (h // g)``.
        chunk_size: tokens per chunk. The only quadratic products are ``[chunk, chunk]`` per head and chunk;
            the states passed between chunks are ``[p, n]`` per head and chunk, so memory traffic is about
            ``L·h·(chunk + p·n/chunk)`` (least near ``chunk = sqrt(p·n)``, 128 for the release's 64 × 256).
        D: optional skip ``[h]``.

    Returns:
        ``y`` ``[b, L, h, p]`` in ``x``'s dtype. Decays, their cumulative sums and the states passed
        between chunks are kept in float32 (float64 when ``x`` is float64).
    """
    b, L, h, p = x.shape
    g, n = B.shape[-2:]
    if h % g:
        raise ConfigError(f"ssd_chunked: {h} heads are not divisible into {g} groups")
    e = h // g
    cdt = x.dtype
    acc = torch.promote_types(cdt, torch.float32)
    inplace = not torch.is_grad_enabled()
    with torch.autocast(x.device.type, enabled=False):
        Q = max(1, min(int(chunk_size), L))
        pad = (-L) % Q
        x_in = x
        if pad:  # padded steps have dt = 0: no input and no decay, and nothing after them is kept
            x = F.pad(x, (0, 0, 0, 0, 0, pad))
            dt = F.pad(dt, (0, 0, 0, pad))
            B = F.pad(B, (0, 0, 0, 0, 0, pad))
            C = F.pad(C, (0, 0, 0, 0, 0, pad))
        c = (L + pad) // Q
        dt = dt.to(acc)
        dA = (dt * A.to(acc)).reshape(b, c, Q, g, e).permute(0, 3, 4, 1, 2)  # [b, g, e, c, Q]
        Acs = dA.cumsum(-1)
        xdt = (x * dt.to(cdt)[..., None]).reshape(b, c, Q, g, e, p)
        Bc = B.to(cdt).reshape(b, c, Q, g, n).transpose(2, 3)  # [b, c, g, Q, n]
        Cc = C.to(cdt).reshape(b, c, Q, g, n).transpose(2, 3)

        # 1. inside each chunk (diagonal blocks): y_l = Σ_{s≤l} (C_l·B_s) exp(Acs_l − Acs_s) xdt_s
        CB = (Cc @ Bc.transpose(-1, -2)).permute(0, 2, 1, 3, 4)[:, :, None]  # [b, g, 1, c, Q(l), Q(s)]
        causal = torch.ones(Q, Q, dtype=torch.bool, device=x.device).tril()
        seg = Acs[..., :, None] - Acs[..., None, :]  # [b, g, e, c, Q, Q]
        if inplace:
            decay = seg.masked_fill_(~causal, -math.inf).exp_()
        else:
            decay = torch.where(causal, seg, -math.inf).exp()
        M = decay.to(cdt) * CB if cdt != acc else decay * CB
        y_diag = M @ xdt.permute(0, 3, 4, 1, 2, 5)  # [b, g, e, c, Q, p]
        del seg, decay, M

        # 2. each chunk's own end state: Σ_s exp(Acs_last − Acs_s) B_s xdt_sᵀ → [b, c, g, n, e·p]
        w_end = torch.exp(Acs[..., -1:] - Acs).permute(0, 3, 4, 1, 2)  # [b, c, Q, g, e]
        xw = (xdt * w_end[..., None].to(cdt)).transpose(2, 3).reshape(b, c, g, Q, e * p)
        states = Bc.transpose(-1, -2) @ xw
        # heads-major float32 layout for the recurrence over chunks: [b·g·e, c, n·p]
        states = states.reshape(b, c, g, n, e, p).permute(0, 2, 4, 1, 3, 5)
        states = states.to(acc, memory_format=torch.contiguous_format)

        # 3. state at the end of every chunk (linear recurrence over chunks, blocked)
        S_end = _pass_states(states.reshape(b * g * e, c, n * p), Acs[..., -1].reshape(b * g * e, c))
        del states
        # state entering chunk k = end state of chunk k−1, laid out [b, g, c, n, e·p] in the compute dtype
        S_in = torch.zeros(b, g, c, n, e, p, dtype=cdt, device=x.device)
        S_in[:, :, 1:] = S_end.reshape(b, g, e, c, n, p)[:, :, :, :-1].permute(0, 1, 3, 4, 2, 5)
        del S_end

        # 4. contribution of the entering state: exp(Acs_l) C_l · S_in  → [b, g, c, Q, e, p]
        y = (Cc.transpose(1, 2) @ S_in.reshape(b, g, c, n, e * p)).reshape(b, g, c, Q, e, p)
        decay_in = Acs.exp().permute(0, 1, 3, 4, 2)[..., None].to(cdt)  # [b, g, c, Q, e, 1]
        y = y.mul_(decay_in) if inplace else y * decay_in
        y = y.permute(0, 2, 3, 1, 4, 5)  # [b, c, Q, g, e, p] (a free view when g = 1)
        diag = y_diag.permute(0, 3, 4, 1, 2, 5)
        y = y.add_(diag) if inplace else y + diag
        y = y.reshape(b, c * Q, h, p)[:, :L]
        if D is not None:
            y = torch.addcmul(y, x_in, D.to(cdt)[:, None])
        return y.to(cdt)


def ssd_sequential(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None
) -> Tensor:
    """The same SSM as :func:`ssd_chunked` by its defining recurrence, one step at a time (reference)."""
    b, L, h, p = x.shape
    g, n = B.shape[-2:]
    e = h // g
    Bh = B.repeat_interleave(e, dim=2)  # [b, L, h, n]
    Ch = C.repeat_interleave(e, dim=2)
    state = x.new_zeros(b, h, p, n)
    ys = []
    for t in range(L):
        decay = torch.exp(dt[:, t] * A)[:, :, None, None]
        state = decay * state + (dt[:, t, :, None] * x[:, t])[..., None] * Bh[:, t, :, None, :]
        y = (state * Ch[:, t, :, None, :]).sum(-1)
        if D is not None:
            y = y + D[:, None] * x[:, t]
        ys.append(y)
    return torch.stack(ys, 1)


# --------------------------------------------------------------------------------------------- backends
#: Environment variable naming an unpacked ``mamba_ssm`` source tree (e.g. the PyPI sdist) whose Triton SSD
#: kernels are used when the ``mamba_ssm`` package itself cannot be imported (see :func:`_mamba_ssm_scan`).
MAMBA_SSM_SRC_ENV = "LYRA_MAMBA_SSM_SRC"


@functools.cache
def _mamba_ssm_scan() -> Callable | None:
    """``mamba_ssm``'s fused Triton SSD kernel ``mamba_chunk_scan_combined``, or ``None`` when unavailable.

    Tried in order: the installed ``mamba_ssm`` package; then, when ``$LYRA_MAMBA_SSM_SRC`` names an unpacked
    source tree (folder holding ``mamba_ssm/`` or the ``mamba_ssm`` folder itself), its pure-Python Triton
    kernels, imported without running the package's ``__init__`` (which needs the compiled selective-scan
    CUDA extension that these kernels do not use, and that takes long to build).
    """
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except Exception:  # ImportError, or a broken CUDA extension (OSError/RuntimeError)
        mamba_chunk_scan_combined = None
    if mamba_chunk_scan_combined is not None or not os.environ.get(MAMBA_SSM_SRC_ENV):
        return mamba_chunk_scan_combined
    root = Path(os.environ[MAMBA_SSM_SRC_ENV])
    pkg_dir = root / "mamba_ssm" if (root / "mamba_ssm").is_dir() else root
    if not (pkg_dir / "ops" / "triton" / "ssd_combined.py").is_file() or "mamba_ssm" in sys.modules:
        return None
    pkg = types.ModuleType("mamba_ssm")
    pkg.__path__ = [str(pkg_dir)]  # a bare package: submodules import, __init__ does not run
    sys.modules["mamba_ssm"] = pkg
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except Exception:
        for name in [m for m in sys.modules if m == "mamba_ssm" or m.startswith("mamba_ssm.")]:
            del sys.modules[name]
        return None
    return mamba_chunk_scan_combined


def mamba_ssm_available() -> bool:
    """Whether ``mamba_ssm``'s fused SSD kernel can be imported (it needs CUDA to run)."""
    return _mamba_ssm_scan() is not None


def causal_depthwise_conv1d(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """Depthwise causal convolution along time: ``x`` [b, L, ch], ``weight`` [ch, 1, k] → [b, L, ch].

    Output ``t`` is ``bias + Σ_j weight[:, 0, j] · x[t − (k − 1) + j]`` (zeros before the start): the same
    as ``nn.Conv1d(ch, ch, k, groups=ch, padding=k − 1)`` truncated to the first ``L`` outputs, computed as
    ``k`` shifted multiply-adds in the ``[b, L, ch]`` layout (no transposes; fast on CPU, fusable by
    ``torch.compile``).
    """
    k = weight.shape[-1]
    L = x.shape[1]
    w = weight[:, 0, :].to(x.dtype)  # [ch, k]
    xp = F.pad(x, (0, 0, k - 1, 0))
    y = xp[:, k - 1:] * w[:, k - 1] if bias is None else torch.addcmul(bias.to(x.dtype), xp[:, k - 1:], w[:, k - 1])
    for j in range(k - 1):
        y = torch.addcmul(y, xp[:, j: j + L], w[:, j])
    return y


def _split_xbc(xBC: Tensor, nheads: int, headdim: int, ngroups: int, d_state: int):
    b, L, _ = xBC.shape
    d_inner = nheads * headdim
    x, B, C = torch.split(xBC, [d_inner, ngroups * d_state, ngroups * d_state], dim=-1)
    return (x.reshape(b, L, nheads, headdim), B.reshape(b, L, ngroups, d_state),
            C.reshape(b, L, ngroups, d_state))


def _scan_torch(xBC: Tensor, dt: Tensor, conv_w: Tensor, conv_b: Tensor | None, dt_bias: Tensor, A_log: Tensor,
                D: Tensor, nheads: int, headdim: int, ngroups: int, d_state: int, chunk_size: int) -> Tensor:
    xBC = F.silu(causal_depthwise_conv1d(xBC, conv_w, conv_b))
    x, B, C = _split_xbc(xBC, nheads, headdim, ngroups, d_state)
    acc = torch.promote_types(x.dtype, torch.float32)
    delta = F.softplus(dt.to(acc) + dt_bias.to(acc))
    A = -torch.exp(A_log.to(acc))
    y = ssd_chunked(x, delta, A, B, C, chunk_size=chunk_size, D=D)
    return y.reshape(*y.shape[:2], nheads * headdim)


def _scan_mamba_ssm(xBC: Tensor, dt: Tensor, conv_w: Tensor, conv_b: Tensor | None, dt_bias: Tensor,
                    A_log: Tensor, D: Tensor, nheads: int, headdim: int, ngroups: int, d_state: int,
                    chunk_size: int) -> Tensor:
    kernel = _mamba_ssm_scan()
    xBC = F.silu(causal_depthwise_conv1d(xBC, conv_w, conv_b))
    x, B, C = _split_xbc(xBC, nheads, headdim, ngroups, d_state)
    # strided views are fine for the kernel (mamba_ssm's own Mamba2 passes split views too)
    y = kernel(x, dt, -torch.exp(A_log.float()), B, C, chunk_size, D=D.float(), dt_bias=dt_bias.float(),
               dt_softplus=True)
    return y.reshape(*y.shape[:2], nheads * headdim)


# --------------------------------------------------------------------------------------------- functional mixer
def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """``x / sqrt(mean(x²) + eps) · weight`` over the last dim, computed in float32 (float64 stays float64)."""
    xf = x.to(torch.promote_types(x.dtype, torch.float32))
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.to(xf.dtype)).to(x.dtype)


def gated_rms_norm(y: Tensor, z: Tensor, weight: Tensor, eps: float) -> Tensor:
    """Mamba-2's gate-then-normalise ``RMSNorm(y · silu(z)) · weight`` (float32 inside), in ``y``'s dtype."""
    acc = torch.promote_types(torch.promote_types(y.dtype, z.dtype), torch.float32)
    return rms_norm(y.to(acc) * F.silu(z.to(acc)), weight, eps).to(y.dtype)


#: Per-scan parameters, in this order: conv weight, conv bias, dt_bias, A_log, D, norm weight.
ScanParams = tuple[Tensor, Tensor | None, Tensor, Tensor, Tensor, Tensor]


def bimamba_mix(u: Tensor, in_w: Tensor, out_w: Tensor, scans: tuple[ScanParams, ...],
                dims: tuple[int, int, int, int, int], norm_eps: float, scan_fn: Callable) -> Tensor:
    """The bidirectional Mamba-2 mixer as a function of its parameters: ``u`` [b, L, d_model] → same shape.

    ``dims`` = (nheads, headdim, ngroups, d_state, chunk_size). ``scans[0]`` runs forward, ``scans[1]`` (if
    any) on the reversed sequence, flipped back; gate and norm act per token, so they are applied after the
    flip back (the same result as inside the flipped frame). Outputs are summed before ``out_w``.
    """
    nheads, headdim, ngroups, d_state, chunk_size = dims
    d_inner = nheads * headdim
    zxbcdt = F.linear(u, in_w)
    z, xBC, dt = torch.split(zxbcdt, [d_inner, d_inner + 2 * ngroups * d_state, nheads], dim=-1)
    out = None
    for i, (conv_w, conv_b, dt_bias, A_log, D, norm_w) in enumerate(scans):
        args = (conv_w, conv_b, dt_bias, A_log, D, nheads, headdim, ngroups, d_state, chunk_size)
        if i == 0:
            y = scan_fn(xBC, dt, *args)
        else:
            y = scan_fn(xBC.flip(1), dt.flip(1), *args).flip(1)
        y = gated_rms_norm(y, z, norm_w, norm_eps)
        out = y if out is None else out + y
    return F.linear(out, out_w)


def _mamba_block_torch(x: Tensor, norm_w: Tensor, norm_eps: float, in_w: Tensor, out_w: Tensor,
                       scans: tuple[ScanParams, ...], dims: tuple[int, int, int, int, int],
                       gate_eps: float) -> Tensor:
    """A whole pre-norm Mamba-2 block on the torch SSD path (the unit that ``torch.compile`` fuses)."""
    return x + bimamba_mix(rms_norm(x, norm_w, norm_eps), in_w, out_w, scans, dims, gate_eps, _scan_torch)


@functools.cache
def _compiled_block() -> Callable:
    # Parameters are arguments, so one compiled graph serves every block of the same shapes.
    return torch.compile(_mamba_block_torch, dynamic=False)


def _is_cuda(x: Tensor) -> bool:
    return x.is_cuda


@functools.cache
def compile_available() -> bool:
    """Whether ``torch.compile`` can build GPU kernels here (TorchDynamo supported and Triton importable)."""
    try:
        from torch.utils._triton import has_triton

        return bool(torch._dynamo.is_dynamo_supported()) and bool(has_triton())
    except Exception:  # an old or partial torch build
        return False


def auto_candidates(x: Tensor) -> tuple[str, ...]:
    """The SSD paths ``auto`` tries for input ``x`` [b, L, d], fastest first (measured at paper scale on an H100:
    compiled blocks 1.59 s, mamba_ssm 1.81 s, torch 2.50 s per forward; docs/bench/student_official_h100.json).

    On CUDA below float64: ``compile`` (inference only, without gradients) when :func:`compile_available` and
    ``L`` ≥ :data:`COMPILE_MIN_TOKENS`, then ``mamba_ssm`` when :func:`mamba_ssm_available` (training too, as
    before), then ``torch``; elsewhere ``torch`` alone. Paths that failed earlier in this process are left out.
    """
    if not _is_cuda(x) or x.dtype == torch.float64:
        return ("torch",)
    order = []
    if not torch.is_grad_enabled() and x.shape[1] >= COMPILE_MIN_TOKENS and compile_available():
        order.append("compile")
    if mamba_ssm_available():
        order.append("mamba_ssm")
    return (*[b for b in order if b not in _FAILED], "torch")


def _note_failure(backend: str, err: BaseException) -> None:
    if backend not in _FAILED:
        _FAILED.add(backend)
        warnings.warn(f"SSD path {backend!r} failed ({type(err).__name__}: {str(err)[:200]}); falling back to the "
                      "next one for the rest of this process", RuntimeWarning, stacklevel=3)


def _pick_scan(backend: str, x: Tensor) -> Callable:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown SSD backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "mamba_ssm":
        if not mamba_ssm_available() or not _is_cuda(x):
            raise ConfigError("SSD backend 'mamba_ssm' needs the mamba_ssm package and a CUDA tensor; "
                              "use backend 'torch' or install mamba_ssm")
        return _scan_mamba_ssm
    if backend == "auto" and "mamba_ssm" in auto_candidates(x):
        return _scan_mamba_ssm
    return _scan_torch


# --------------------------------------------------------------------------------------------- modules
class RMSNorm(nn.Module):
    """RMSNorm with a weight and no bias, computed in float32: ``x / sqrt(mean(x²) + eps) · weight``."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.weight, self.eps)


class GatedRMSNorm(RMSNorm):
    """Mamba-2's gate-then-normalise: ``RMSNorm(y · silu(z)) · weight`` over the last dim (eps 1e-5)."""

    def forward(self, y: Tensor, z: Tensor) -> Tensor:  # type: ignore[override]
        return gated_rms_norm(y, z, self.weight, self.eps)


class Mamba2Scan(nn.Module):
    """One scan direction: its conv, dt bias, A, D and gated norm (``mamba_scans.{0,1}.*``)."""

    def __init__(self, d_inner: int, d_state: int, headdim: int, ngroups: int, d_conv: int,
                 dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4,
                 A_init_range: tuple[float, float] = (1.0, 16.0)) -> None:
        super().__init__()
        self.d_inner, self.d_state, self.headdim, self.ngroups = d_inner, d_state, headdim, ngroups
        self.nheads = d_inner // headdim
        conv_dim = d_inner + 2 * ngroups * d_state
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1, bias=True)
        # Mamba-2 initialisation: dt log-uniform in [dt_min, dt_max] (stored as softplus⁻¹), A ~ U(1, 16).
        dt = torch.exp(torch.rand(self.nheads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(*A_init_range)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = GatedRMSNorm(d_inner, eps=1e-5)

    def params(self) -> ScanParams:
        return (self.conv1d.weight, self.conv1d.bias, self.dt_bias, self.A_log, self.D, self.norm.weight)


class BiMamba2(nn.Module):
    """Bidirectional Mamba-2 mixer: shared ``in_proj``/``out_proj``, two scans whose outputs are summed.

    ``forward(u [b, L, d_model]) -> [b, L, d_model]``. ``backend`` picks the SSD implementation (see
    :data:`BACKENDS`; ``compile`` acts at the level of the whole :class:`Mamba2Block`, here it means torch).
    """

    def __init__(self, d_model: int, d_state: int = 256, d_conv: int = 4, expand: int = 2, headdim: int = 64,
                 ngroups: int = 1, chunk_size: int = 128, backend: str = "auto",
                 bidirectional: bool = True) -> None:
        super().__init__()
        self.d_model, self.d_state, self.ngroups = d_model, d_state, ngroups
        self.d_inner = expand * d_model
        if self.d_inner % headdim:
            raise ConfigError(f"d_inner {self.d_inner} is not a multiple of headdim {headdim}")
        self.headdim = headdim
        self.nheads = self.d_inner // headdim
        self.chunk_size = chunk_size
        self.backend = backend
        d_in_proj = 2 * self.d_inner + 2 * ngroups * d_state + self.nheads  # order: z, x, B, C, dt
        self.in_proj = nn.Linear(d_model, d_in_proj, bias=False)
        self.mamba_scans = nn.ModuleList(
            Mamba2Scan(self.d_inner, d_state, headdim, ngroups, d_conv) for _ in range(2 if bidirectional else 1)
        )
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    @property
    def dims(self) -> tuple[int, int, int, int, int]:
        return (self.nheads, self.headdim, self.ngroups, self.d_state, int(self.chunk_size))

    def scan_params(self) -> tuple[ScanParams, ...]:
        return tuple(s.params() for s in self.mamba_scans)

    def forward(self, u: Tensor) -> Tensor:
        return self.mix(u, self.backend)

    def mix(self, u: Tensor, backend: str) -> Tensor:
        """The mixer on SSD path ``backend`` (``compile`` here means the eager torch path)."""
        scan_fn = _pick_scan("torch" if backend == "compile" else backend, u)
        return bimamba_mix(u, self.in_proj.weight, self.out_proj.weight, self.scan_params(), self.dims,
                           self.mamba_scans[0].norm.eps, scan_fn)


class Mamba2Block(nn.Module):
    """Pre-norm residual block ``x + mamba(norm(x))`` with an RMSNorm (eps 1e-5, mamba_ssm's default).

    With the mixer's backend ``compile`` the whole block runs through one ``torch.compile``d function
    (compiled once, shared by all blocks of the same shapes; the first call takes a while).
    """

    def __init__(self, d_model: int, **mixer_kwargs) -> None:
        super().__init__()
        self.norm = RMSNorm(d_model, eps=1e-5)
        self.mamba = BiMamba2(d_model, **mixer_kwargs)

    #: The SSD path the last forward ran (``torch``, ``compile`` or ``mamba_ssm``; ``None`` before the first).
    used_backend: str | None = None

    def forward(self, x: Tensor) -> Tensor:
        backend = self.mamba.backend
        if backend != "auto":
            if backend not in BACKENDS:
                raise ConfigError(f"unknown SSD backend {backend!r}; choose one of {', '.join(BACKENDS)}")
            out = self._run(backend, x)
            self.used_backend = backend
            return out
        for cand in auto_candidates(x):
            if cand == "torch":
                break
            try:
                out = self._run(cand, x)
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as e:  # a compiler, Triton or kernel failure: the next path runs instead
                _note_failure(cand, e)
                continue
            self.used_backend = cand
            return out
        self.used_backend = "torch"
        return self._run("torch", x)

    def _run(self, backend: str, x: Tensor) -> Tensor:
        m = self.mamba
        if backend == "compile":
            return _compiled_block()(x, self.norm.weight, self.norm.eps, m.in_proj.weight, m.out_proj.weight,
                                     m.scan_params(), m.dims, m.mamba_scans[0].norm.eps)
        return x + m.mix(self.norm(x), backend)
