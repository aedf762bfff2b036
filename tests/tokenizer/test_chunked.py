"""Chunked (memory-bounded) tokenizer execution: equal to diffusers' forward, bounded memory at paper scale."""

from __future__ import annotations

import pytest
import torch

from lyra.errors import ConfigError
from lyra.lowmem import LiveTensorBytes
from lyra.tokenizer import Tokenizer
from lyra.tokenizer.chunked import DEFAULT_CHUNK_ELEMENTS, ChunkedCosmos

# The official block design at micro widths, with attention inside the down/up blocks too (resolution 64,
# patch 4: the first encoder level is at "resolution" 16, the decoder's last two at 8 and 16).
MICRO_OFFICIAL = {"encoder_block_out_channels": (16, 32, 32, 32), "decode_block_out_channels": (16, 32, 32, 32),
                  "resolution": 64, "attention_resolutions": (16, 8), "num_layers": 2}
# Measured on the CPU (float32): max |chunked − plain| / max |plain| ≤ 2e-6 (encode ≤ 5e-7). Not exact
# because oneDNN picks other convolution kernels (other summation orders) for other slice shapes.
REL_TOL = 1e-5


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@pytest.fixture(scope="module", params=["tiny", "micro_official"])
def vae(request) -> torch.nn.Module:
    torch.manual_seed(0)
    kw = MICRO_OFFICIAL if request.param == "micro_official" else {}
    tok = Tokenizer.from_config("tiny" if request.param == "tiny" else "official", **kw)
    return tok.vae.eval().requires_grad_(False)


@torch.no_grad()
@pytest.mark.parametrize("budget", [1 << 11, 1 << 15, 1 << 40])
def test_chunked_equals_plain_forward(vae, budget):
    x = torch.rand(2, 3, 17, 48, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ref = vae.encode(x).latent_dist.mode()
    z = ChunkedCosmos(vae, budget).encode(x)
    assert z.shape == ref.shape == (2, 16, 3, 6, 8)
    assert _rel_err(z, ref) <= REL_TOL
    dref = vae.decode(ref).sample
    d = ChunkedCosmos(vae, budget).decode(ref)
    assert d.shape == dref.shape == (2, 3, 17, 48, 64)
    assert _rel_err(d, dref) <= REL_TOL
    if budget == 1 << 40:  # one chunk per layer: the same kernels on the same shapes → bit-identical
        assert torch.equal(z, ref) and torch.equal(d, dref)


@torch.no_grad()
def test_attention_runs_one_frame_at_a_time_under_a_small_budget(vae, monkeypatch):
    """The spatial attention of the middle block gets slices of frames, never the whole video."""
    seen: list[int] = []
    attn = vae.encoder.mid_block.attentions[0]
    original = attn.forward
    monkeypatch.setattr(attn, "forward", lambda h, *a, **k: (seen.append(h.shape[2]), original(h, *a, **k))[1])
    x = torch.rand(1, 3, 25, 32, 48) * 2 - 1
    ChunkedCosmos(vae, 1 << 10).encode(x)
    assert seen == [1, 1, 1, 1]  # 4 latent frames, one call each
    seen.clear()
    ChunkedCosmos(vae, 1 << 40).encode(x)
    assert seen == [4]


@torch.no_grad()
def test_official_paper_scale_memory_on_meta():
    """The official tokenizer at 121 × 704 × 1280 (bf16), counted on the meta device: the plain forward holds
    the middle blocks' 16 × 14,080² attention scores (11.8 GiB in float32) among ~27 GiB; chunked stays near 4."""
    with torch.device("meta"):
        tok = Tokenizer.from_config("official")
    vae = tok.vae.to(device="meta", dtype=torch.bfloat16).eval().requires_grad_(False)  # buffers too
    weights = [*vae.parameters(), *vae.buffers()]
    x = torch.empty(1, 3, 121, 704, 1280, device="meta", dtype=torch.bfloat16)
    z = torch.empty(1, 16, 16, 88, 160, device="meta", dtype=torch.bfloat16)
    peaks = {}
    for name, fn in (("plain_encode", lambda: vae.encode(x).latent_dist.mode()),
                     ("chunked_encode", lambda: ChunkedCosmos(vae, DEFAULT_CHUNK_ELEMENTS).encode(x)),
                     ("plain_decode", lambda: vae.decode(z).sample),
                     ("chunked_decode", lambda: ChunkedCosmos(vae, DEFAULT_CHUNK_ELEMENTS).decode(z))):
        with LiveTensorBytes(ignore=[*weights, x, z]) as live:
            out = fn()
        peaks[name] = live.peak / 2**30
        assert tuple(out.shape) == ((1, 16, 16, 88, 160) if "encode" in name else (1, 3, 121, 704, 1280))
        del out
    assert peaks["plain_encode"] > 20 and peaks["plain_decode"] > 20
    assert peaks["chunked_encode"] < 6 and peaks["chunked_decode"] < 6, peaks


@torch.no_grad()
def test_tokenizer_option_batches_and_errors():
    tok = Tokenizer.from_preset("tiny")
    assert tok.chunk_elements is None and tok.max_batch is None  # default: diffusers' plain forward, unchanged
    video = torch.rand(3, 9, 3, 48, 80, generator=torch.Generator().manual_seed(2))
    z = tok.encode(video)
    y = tok.decode(z)
    # one video at a time: the same numbers up to oneDNN's batch-size-dependent kernels (measured ≤ 2e-6)
    one = Tokenizer(tok.vae, max_batch=1)
    assert _rel_err(one.encode(video), z) <= REL_TOL and _rel_err(one.decode(z), y) <= REL_TOL
    chunked = Tokenizer(tok.vae, max_batch=2, chunk_elements=1 << 12)
    zc = chunked.encode(video)
    assert zc.shape == z.shape == (3, 16, 2, 6, 10) and zc.dtype == torch.float32
    assert _rel_err(zc, z) <= REL_TOL
    yc = chunked.decode(z)
    assert yc.shape == y.shape == (3, 9, 3, 48, 80) and 0.0 <= float(yc.min()) and float(yc.max()) <= 1.0
    assert _rel_err(yc, y) <= REL_TOL
    assert chunked.set_chunking(None) is chunked and chunked.chunk_elements is None
    for bad in (0, -5):
        with pytest.raises(ConfigError, match="chunk_elements"):
            tok.set_chunking(bad)
    with pytest.raises(ValueError, match="chunk_elements"):
        ChunkedCosmos(tok.vae, 0)
