"""The 3DGS decoder: official state dict, shapes and order of the outputs, conditioning paths, the head."""

from __future__ import annotations

import pathlib

import pytest
import torch
import torch.nn.functional as F

from lyra.errors import ConfigError
from lyra.student import PRESETS, DecoderConfig, LatentDecoder, plucker_latents, time_latents
from lyra.student.decoder import conv_transpose3d_by_matmul
from tests.student.student_helpers import StandInEncoder, make_cameras

TSV = pathlib.Path(__file__).parents[1] / "data" / "lyra1_decoder_state_dict.tsv"


def read_tsv() -> dict[str, tuple[int, ...]]:
    rows = [line.split("\t") for line in TSV.read_text().splitlines()[1:] if line.strip()]
    return {name: tuple(int(s) for s in shape.split("x")) for name, shape, _ in rows}


def test_official_state_dict_matches_the_release_exactly():
    with torch.device("meta"):
        model = LatentDecoder("official")
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tsv = read_tsv()
    assert sorted(set(tsv) - set(mine)) == []  # nothing missing
    assert sorted(set(mine) - set(tsv)) == []  # nothing extra
    assert {k: mine[k] for k in tsv if mine[k] != tsv[k]} == {}
    assert sum(v.numel() for v in model.state_dict().values()) == 32_753_996  # "32.75 M"
    blocks = {type(b).__name__ for i, b in enumerate(model.enc_blocks) if i in (7, 15)}
    assert blocks == {"TransformerBlock"}


def test_official_preset_values():
    cfg = PRESETS["official"]
    assert (cfg.width, cfg.depth, cfg.attention_blocks, cfg.d_state, cfg.expand, cfg.headdim, cfg.d_conv,
            cfg.num_heads, cfg.mlp_ratio) == (512, 16, (7, 15), 256, 2, 64, 4, 8, 4.0)


def test_official_norm_epsilons_and_gelu():
    with torch.device("meta"):
        m = LatentDecoder("official")
    assert m.patch_embed.norm.eps == 1e-5 and m.patch_plucker_embed.norm.eps == 1e-5
    assert m.enc_norm.eps == 1e-6 and m.enc_blocks[7].norm1.eps == 1e-6 and m.enc_blocks[7].norm2.eps == 1e-6
    assert m.enc_blocks[0].mamba.mamba_scans[0].norm.eps == 1e-5
    assert m.enc_blocks[7].mlp.act.approximate == "none"


def test_tiny_forward_count_order_and_rays(tiny_inputs):
    latents, cams, plucker = tiny_inputs
    model = LatentDecoder("tiny").eval()
    with torch.no_grad():
        raw = model(latents, cams, plucker)
        feats = model.features(latents, plucker)  # [B, V, 12, T, h, w]
    B, V, _, t, h, w = latents.shape
    T = 1 + 8 * (t - 1)
    assert raw.shape == (B, V * T * h * w, 14) and torch.isfinite(raw).all()
    assert feats.shape == (B, V, 12, T, h, w)
    o, d = cams.downscale(8).rays(normalize=True)  # [B, V, T, h, w, 3]
    pos = raw[0, :, :3].reshape(V, T, h, w, 3)
    dist = (pos - o[0]).norm(dim=-1)
    # order (v, T, y, x): each Gaussian sits on its own pixel's unit ray at its own head distance
    assert torch.allclose(F.normalize(pos - o[0], dim=-1), d[0], atol=1e-4)
    assert torch.allclose(dist, model.activations.distance(feats[0, :, 0]), rtol=1e-4)
    gs = model.to_gaussians(raw)
    assert len(gs) == 1 and len(gs[0].validate()) == V * T * h * w
    pruned = model.to_gaussians(raw, prune_ratio=0.8)[0]
    assert len(pruned) == int(V * T * h * w * (1 - 0.8))
    assert pruned.opacities.min() >= gs[0].opacities.sort(descending=True).values[len(pruned) - 1]


def test_tiny_full_size_gaussian_count():
    g = torch.Generator().manual_seed(0)
    lat = torch.randn(1, 6, 16, 3, 22, 40, generator=g)
    pl = torch.randn(1, 6, 32, 3, 22, 40, generator=g)
    cams = make_cameras(1, 6, 17, 320, 176)
    with torch.no_grad():
        raw = LatentDecoder("tiny").eval()(lat, cams, pl)
    assert raw.shape == (1, 6 * 17 * 22 * 40, 14) == (1, 89_760, 14)
    assert torch.isfinite(raw).all()


def test_views_are_fused_into_one_sequence(tiny_inputs):
    latents, cams, plucker = tiny_inputs
    model = LatentDecoder("tiny").eval()
    with torch.no_grad():
        a = model.features(latents, plucker)
        changed = latents.clone()
        changed[:, 1] += 1.0  # only view 1 changes
        b = model.features(changed, plucker)
    assert (a[:, 0] - b[:, 0]).abs().max() > 1e-4  # ... and view 0's Gaussians see it


def test_zero_initialised_conditioning(tiny_inputs):
    latents, cams, plucker = tiny_inputs
    model = LatentDecoder("tiny").eval()
    tl = torch.randn(1, 1, 16, 2, 4, 6)
    with torch.no_grad():
        base = model.features(latents, plucker)
        assert torch.equal(base, model.features(latents, plucker * 3 + 1))
        assert torch.equal(base, model.features(latents, plucker, tl, tl[:, :, :, :1]))
        model.patch_plucker_embed.proj.weight.normal_()
        assert not torch.allclose(base, model.features(latents, plucker))


def test_time_latents_are_added_with_separate_embeddings(tiny_inputs):
    latents, cams, plucker = tiny_inputs
    model = LatentDecoder("tiny").eval()
    with torch.no_grad():
        for emb in (model.patch_time_embed, model.patch_time_embed_tgt):
            emb.proj.weight.normal_()
            emb.proj.bias.normal_()
        src = torch.randn(1, 1, 16, 2, 4, 6)
        tgt = torch.randn(1, 1, 16, 1, 4, 6)
        x0 = model.tokens(latents, plucker)
        x1 = model.tokens(latents, plucker, src, tgt)
        V = latents.shape[1]
        want = model.patch_time_embed(src[:, 0]).repeat(1, V, 1) \
            + model.patch_time_embed_tgt(tgt[:, 0].expand(-1, -1, 2, -1, -1)).repeat(1, V, 1)
        assert torch.allclose(x1 - x0, want, atol=1e-5)
    with pytest.raises(ValueError, match="time latents"):
        model.tokens(latents, plucker, torch.randn(1, 1, 16, 2, 4, 5))


def test_gradient_checkpointing_same_values_and_grads(tiny_inputs):
    latents, cams, plucker = tiny_inputs
    torch.manual_seed(0)
    model = LatentDecoder("tiny")
    outs = []
    for ckpt in (False, True):
        model.set_gradient_checkpointing(ckpt)
        model.zero_grad()
        raw = model(latents, cams, plucker)
        raw[..., :3].sum().backward()
        outs.append((raw.detach(), model.enc_blocks[0].mamba.in_proj.weight.grad.clone()))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-6)
    assert torch.allclose(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-6)


def test_official_preset_runs_on_a_small_input():
    torch.manual_seed(0)
    model = LatentDecoder("official").eval()
    lat = torch.randn(1, 1, 16, 2, 4, 4)
    pl = torch.randn(1, 1, 32, 2, 4, 4)
    cams = make_cameras(1, 1, 9, 32, 32)
    with torch.no_grad():
        raw = model(lat, cams, pl)
        # parity with the same weights and inputs in float64
        ref = model.double()(lat.double(), cams, pl.double())
    assert raw.shape == (1, 9 * 4 * 4, 14) and torch.isfinite(raw).all()
    assert raw.dtype == torch.float32 and ref.dtype == torch.float64
    torch.testing.assert_close(raw.double(), ref, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("t", [1, 2, 3])
def test_head_is_the_transposed_convolution(t):
    torch.manual_seed(0)
    deconv = torch.nn.ConvTranspose3d(5, 12, (9, 2, 2), stride=(8, 2, 2), padding=(4, 0, 0)).double()
    x = torch.randn(2, 5, t, 3, 4, dtype=torch.float64)
    ref = deconv(x)
    out = conv_transpose3d_by_matmul(x, deconv.weight, deconv.bias, deconv.stride, 4)
    assert out.shape == ref.shape == (2, 12, 1 + 8 * (t - 1), 6, 8)
    assert torch.allclose(out, ref, atol=1e-12)


def test_head_latent_frame_covers_frames_8t_minus_4_to_8t_plus_4():
    deconv = torch.nn.ConvTranspose3d(1, 1, (9, 2, 2), stride=(8, 2, 2), padding=(4, 0, 0), bias=False)
    with torch.no_grad():
        deconv.weight.fill_(1.0)
    for tau in range(3):
        x = torch.zeros(1, 1, 3, 1, 1)
        x[:, :, tau] = 1
        out = conv_transpose3d_by_matmul(x, deconv.weight, None, deconv.stride, 4)[0, 0, :, 0, 0]
        frames = torch.nonzero(out)[:, 0].tolist()
        assert frames == list(range(max(0, 8 * tau - 4), min(17, 8 * tau + 5)))


def test_input_validation(tiny_inputs):
    latents, cams, plucker = tiny_inputs
    model = LatentDecoder("tiny")
    with pytest.raises(ValueError, match="batch shape"):
        model(latents, cams[:, :, :5], plucker)
    with pytest.raises(ValueError, match="images"):
        model(latents, make_cameras(1, 2, 9, 64, 32), plucker)
    with pytest.raises(ValueError, match="plucker_latents"):
        model(latents, cams, plucker[:, :, :16])
    with pytest.raises(ValueError, match="latents"):
        model(latents[:, :, :8], cams, plucker)
    no_time = LatentDecoder(PRESETS["tiny"].with_(time_embeddings=False))
    assert not any("time" in k for k in no_time.state_dict())
    with pytest.raises(ValueError, match="time embeddings"):
        no_time.tokens(latents, plucker, torch.zeros(1, 1, 16, 2, 4, 6))


def test_config_round_trip_and_errors():
    cfg = PRESETS["tiny"]
    assert DecoderConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        LatentDecoder("huge")
    with pytest.raises(ConfigError):
        DecoderConfig(depth=4, attention_blocks=(7,))
    with pytest.raises(ConfigError):
        DecoderConfig.from_dict({"widht": 3})


def test_plucker_latents_helper(encoder):
    cams = make_cameras(1, 2, 9, 48, 32)
    lat = plucker_latents(cams, encoder)
    assert lat.shape == (1, 2, 32, 2, 4, 6)
    pl = cams[:, 1].plucker().transpose(1, 2)  # [B, 6, T, H, W]: (o × d, d)
    assert torch.allclose(lat[:, 1, :16], encoder.encode(pl[:, :3]), atol=1e-6)
    assert torch.allclose(lat[:, 1, 16:], encoder.encode(pl[:, 3:]), atol=1e-6)
    o, d = cams[:, 1].rays()
    assert torch.allclose(pl[:, 3:].movedim(1, -1), d, atol=1e-6)  # unit directions, as they are


def test_time_latents_helper(encoder):
    times = torch.linspace(0, 1, 9)[None]
    lat = time_latents(times, encoder, 16, 24)
    assert lat.shape == (1, 16, 2, 2, 3)
    video = torch.stack([times, times.cos(), times.sin()], 1)[..., None, None].expand(1, 3, 9, 16, 24) * 2 - 1
    assert torch.allclose(lat, encoder.encode(video), atol=1e-6)


def test_any_latent_channel_count(tmp_path):
    """A decoder for a tokenizer of C = 8 latent channels: Plücker latents of 2C = 16 and time latents of C from an
    8-channel encoder, a forward to Gaussians, an export round trip; a tokenizer of another C is refused in one
    line before any shape error."""
    from dataclasses import replace

    from lyra.errors import WeightsError
    from lyra.pipeline_parts import load_decoder

    enc = StandInEncoder(latent_channels=8)
    cfg = replace(PRESETS["tiny"], latent_channels=8)
    torch.manual_seed(0)
    model = LatentDecoder(cfg).eval()
    assert model.patch_plucker_embed.proj.in_channels == 16 and model.patch_time_embed.proj.in_channels == 8
    with torch.no_grad():
        for emb in (model.patch_plucker_embed, model.patch_time_embed, model.patch_time_embed_tgt):
            emb.proj.weight.normal_()  # the conditioning paths start at zero: make them count
    cams = make_cameras(1, 2, 9, 48, 32)
    pl = plucker_latents(cams, enc)
    times = torch.linspace(0, 1, 9)[None]
    src = time_latents(times, enc, 32, 48)[:, None]
    assert pl.shape == (1, 2, 16, 2, 4, 6) and src.shape == (1, 1, 8, 2, 4, 6)
    latents = torch.randn(1, 2, 8, 2, 4, 6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        raw = model(latents, cams, pl)
        timed = model(latents, cams, pl, src, src[:, :, :, :1])
    assert raw.shape == (1, 2 * 9 * 4 * 6, 14) and torch.isfinite(raw).all()
    assert not torch.allclose(raw, timed)
    (g,) = LatentDecoder.to_gaussians(raw)
    assert len(g) == raw.shape[1]
    with pytest.raises(ValueError, match=r"latents must be \[B, V, 8, t, h, w\]"):
        model(torch.randn(1, 2, 16, 2, 4, 6), cams, pl)
    with pytest.raises(ValueError, match=r"time latents must be \[B, V or 1, 8"):
        model.tokens(latents, pl, torch.randn(1, 1, 16, 2, 4, 6))
    model.check_tokenizer(enc)
    with pytest.raises(WeightsError, match="^the student reads 8-channel latents, tokenizer X makes 16$"):
        model.check_tokenizer(StandInEncoder(), "tokenizer X")
    model.save_pretrained(tmp_path / "c8", meta={"tokenizer": "tiny_c8"})
    loaded, meta = load_decoder(tmp_path / "c8", torch.device("cpu"), torch.float32)
    assert loaded.config.latent_channels == 8 and meta["tokenizer"] == "tiny_c8"
    with torch.no_grad():
        again = loaded(latents, cams, pl)
    assert torch.allclose(again, raw, atol=1e-2, rtol=1e-2)  # fp16 export
