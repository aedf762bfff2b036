"""The tokenizer wrapper: shapes, causality, ranges, statistics, files, errors; the official config."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from lyra.errors import ConfigError, WeightsError
from lyra.tokenizer import Tokenizer, latent_frames, preset_config
from lyra.tokenizer import tokenizer as tokmod
from lyra.tokenizer.tokenizer import stats_to_frames


@pytest.fixture(scope="module")
def tiny() -> Tokenizer:
    torch.manual_seed(0)
    return Tokenizer.from_config("tiny").eval().requires_grad_(False)


def _video(b, t, h, w, seed=0):
    return torch.rand(b, t, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_latent_frames_rule():
    assert [latent_frames(t) for t in (1, 9, 17, 121)] == [1, 2, 3, 16]
    for bad in (0, 2, 16, 120):
        with pytest.raises(ConfigError, match="1 \\+ 8k"):
            latent_frames(bad)
    assert Tokenizer.latent_shape(17, 176, 320) == (16, 3, 22, 40)
    assert Tokenizer.latent_shape(121, 704, 1280) == (16, 16, 88, 160)


def test_tiny_preset_shapes_and_size(tiny):
    # ≤ 4 M parameters, i.e. ≤ 8 MB in fp16.
    assert tiny.num_parameters() == 3_863_248
    with torch.no_grad():
        z = tiny.encode(_video(1, 17, 176, 320))  # one tiny trajectory
        assert z.shape == (1, 16, 3, 22, 40) and z.dtype == torch.float32
        y = tiny.decode(z[..., :3, :5])
    assert y.shape == (1, 17, 3, 24, 40)
    assert y.min() >= 0.0 and y.max() <= 1.0 and y.std() > 0


def test_encoder_and_decoder_are_causal(tiny):
    a = _video(1, 17, 16, 24, seed=1)
    b = a.clone()
    b[:, 9:] = _video(1, 8, 16, 24, seed=2)  # frames 9..16 differ
    with torch.no_grad():
        za, zb = tiny.encode(a), tiny.encode(b)
    # Latent frame 0 sees frame 0 only; latent frame 1 sees frames 0..8; latent frame 2 the rest.
    assert torch.allclose(za[:, :, :2], zb[:, :, :2], atol=1e-5)
    assert (za[:, :, 2] - zb[:, :, 2]).abs().max() > 1e-3
    c = a.clone()
    c[:, 1:] = 1.0 - c[:, 1:]  # only frame 0 shared
    with torch.no_grad():
        zc = tiny.encode(c)
        assert torch.allclose(za[:, :, 0], zc[:, :, 0], atol=1e-5)
        assert (za[:, :, 1] - zc[:, :, 1]).abs().max() > 1e-3
        # Decoder: output frame 0 depends on latent frame 0 only.
        ya, yc = tiny.decode(za), tiny.decode(torch.cat([za[:, :, :1], zc[:, :, 1:]], 2))
    assert torch.allclose(ya[:, 0], yc[:, 0], atol=1e-5)
    assert (ya[:, 1:] - yc[:, 1:]).abs().max() > 1e-3


def test_batch_chunking_gives_the_same_result(tiny):
    v = _video(3, 9, 16, 24, seed=3)
    with torch.no_grad():
        whole = tiny.encode(v)
        tiny.max_batch = 1
        try:
            chunked = tiny.encode(v)
            dec = tiny.decode(whole)
        finally:
            tiny.max_batch = None
        assert torch.allclose(whole, chunked, atol=1e-5)
        assert torch.allclose(dec, tiny.decode(whole), atol=1e-5)


def test_encode_raw_takes_model_range(tiny):
    v = _video(1, 9, 16, 16, seed=4)
    x = v.permute(0, 2, 1, 3, 4) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(tiny.encode(v), tiny.encode_raw(x), atol=1e-6)
        # Plücker-like input with values outside [-1, 1] passes unchanged (no clamping, no rescaling).
        big = tiny.encode_raw(3 * x)
    assert not torch.allclose(big, tiny.encode_raw(x), atol=1e-3)


def test_frame_count_and_shape_errors(tiny):
    with pytest.raises(ConfigError, match="16 frames.*1 \\+ 8k.*trim the video to 9"):
        tiny.encode(_video(1, 16, 16, 16))
    with pytest.raises(ConfigError, match="expected a video"):
        tiny.encode(torch.rand(1, 9, 4, 16, 16))
    with pytest.raises(ValueError, match="expected latents"):
        tiny.decode(torch.rand(1, 8, 2, 2, 2))


def test_odd_sizes_are_padded_with_a_warning(tiny):
    v = _video(1, 9, 20, 30, seed=5)
    with pytest.warns(UserWarning, match="padded to 24×32"), torch.no_grad():
        z = tiny.encode(v)
    assert z.shape == (1, 16, 2, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            assert tiny.roundtrip(v).shape == v.shape


def test_normalize_uses_channel_and_frame_statistics():
    tok = Tokenizer.from_config("tiny", num_layers=1)
    mean = torch.arange(16 * 16, dtype=torch.float32).view(16, 16) / 100
    std = 1 + torch.arange(16 * 16, dtype=torch.float32).view(16, 16) / 50
    tok.set_latent_stats(mean, std)
    z = mean[None, :, :3, None, None] + std[None, :, :3, None, None] * torch.ones(2, 16, 3, 4, 5)
    zn = tok.normalize(z)
    assert torch.allclose(zn, torch.full_like(zn, 0.5))  # one std above the mean → σ_data = 0.5
    assert torch.allclose(tok.denormalize(zn), z, atol=1e-5)
    # Beyond the stored 16 latent frames the last frame's statistics are reused.
    m, s = tok.latent_stats(18)
    assert torch.equal(m[0, :, 17, 0, 0], mean[:, 15]) and torch.equal(s[0, :, 16, 0, 0], std[:, 15])
    with pytest.raises(ConfigError):
        tok.set_latent_stats(mean, -std)


def test_stats_to_frames():
    mean = torch.tensor([[1.0, 2.0, 4.0]]).expand(16, 3)
    std = torch.tensor([[0.5, 1.0, 3.0]]).expand(16, 3)
    m, s = stats_to_frames(mean, std, 16)
    assert m.shape == (16, 16)
    assert torch.equal(m[:, :3], mean) and torch.allclose(m[:, 3:], torch.full((16, 13), 3.0))
    assert torch.allclose(s[:, 3:], torch.full((16, 13), 2.0))


def test_save_and_load_round_trip(tmp_path, tiny):
    tok = Tokenizer.from_config("tiny")
    tok.set_latent_stats(torch.rand(16, 16), 0.5 + torch.rand(16, 16))
    out = tok.save_pretrained(tmp_path / "tok", dtype=torch.float32, extra_json={"training_record.json": {"a": 1}})
    assert json.loads((out / "training_record.json").read_text()) == {"a": 1}
    back = Tokenizer.from_pretrained(out)
    assert not back.training and not any(p.requires_grad for p in back.parameters())
    sd, sd2 = tok.vae.state_dict(), back.vae.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert back.config.latents_mean == tok.config.latents_mean
    # fp16 export: weights rounded to fp16, loaded back as fp32; replacing the folder is atomic.
    tok.save_pretrained(tmp_path / "tok")
    back16 = Tokenizer.from_pretrained(tmp_path / "tok")
    assert back16.dtype == torch.float32
    assert all(torch.equal(back16.vae.state_dict()[k], sd[k].half().float()) for k in sd)
    assert not (tmp_path / "tok" / "training_record.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]  # no temporary folders left
    # A pipeline folder with the tokenizer in vae/ loads too.
    (tmp_path / "pipe").mkdir()
    tok.save_pretrained(tmp_path / "pipe" / "vae")
    assert Tokenizer.from_pretrained(tmp_path / "pipe").num_parameters() == tok.num_parameters()


def test_missing_weights_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(tokmod, "weights_dir", lambda: tmp_path)
    with pytest.raises(WeightsError, match="'tiny' tokenizer weights are missing.*lyra.train.recipes.tokenizer"):
        Tokenizer.from_preset("tiny")
    monkeypatch.delenv(tokmod.OFFICIAL_ENV, raising=False)
    with pytest.raises(WeightsError, match="LYRA_COSMOS_TOKENIZER"):
        Tokenizer.from_preset("official")
    with pytest.raises(WeightsError, match="no such tokenizer folder"):
        Tokenizer.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="config.json"):
        Tokenizer.from_pretrained(tmp_path / "empty")
    tok = Tokenizer.from_config("tiny")
    tok.save_pretrained(tmp_path / "t")
    cfg = json.loads((tmp_path / "t" / "config.json").read_text())
    cfg["decode_block_out_channels"] = [16, 16, 16, 16]  # weights no longer match the config
    (tmp_path / "t" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="could not load"):
        Tokenizer.from_pretrained(tmp_path / "t")
    cfg["decode_block_out_channels"], cfg["num_layers"] = [48, 96, 128, 128], 2  # more blocks than stored
    (tmp_path / "t" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="72 missing"):  # diffusers alone would initialise them randomly
        Tokenizer.from_pretrained(tmp_path / "t")
    # A loaded config (with diffusers' private keys) builds a new model.
    assert Tokenizer.from_config(dict(tok.config) | {"_class_name": "AutoencoderKLCosmos"}).num_parameters() > 0
    with pytest.raises(ConfigError, match="unknown tokenizer preset"):
        Tokenizer.from_preset("huge")


def test_official_config_on_meta_device():
    with torch.device("meta"):
        tok = Tokenizer.from_config("official")
    cfg = tok.config
    assert (cfg.latent_channels, cfg.spatial_compression_ratio, cfg.temporal_compression_ratio) == (16, 8, 8)
    assert (cfg.patch_size, cfg.patch_type) == (4, "haar")
    assert tuple(cfg.encoder_block_out_channels) == (128, 256, 512, 512)
    assert tuple(cfg.decode_block_out_channels) == (256, 512, 512, 512)
    n_enc = sum(p.numel() for p in tok.vae.encoder.parameters())
    n_dec = sum(p.numel() for p in tok.vae.decoder.parameters())
    assert (tok.num_parameters(), n_enc, n_dec) == (105_653_696, 42_914_592, 62_738_560)
    # At 8× compression the resolution-32 attention of Cosmos is never reached: only the middle blocks attend.
    assert all(a is None for blk in tok.vae.encoder.down_blocks for a in blk.attentions)
    assert all(a is None for blk in tok.vae.decoder.up_blocks for a in blk.attentions)
    assert len(tok.vae.encoder.mid_block.attentions) == 1 and len(tok.vae.decoder.mid_block.temp_attentions) == 1
    assert preset_config("official")["num_layers"] == 2


def test_config_file_matches_the_preset():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "configs" / "tokenizer_tiny.json"
    cfg = json.loads(path.read_text())
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()} == preset_config("tiny")


@pytest.mark.slow
def test_official_config_runs_at_small_resolution():
    # Random weights; 9 frames of 32×32 keep the 106 M-parameter network to a few seconds on 2 CPU cores
    # (most of it is the random initialisation of 106 M parameters).
    torch.manual_seed(0)
    tok = Tokenizer.from_config("official").eval()
    with torch.no_grad():
        z = tok.encode(_video(1, 9, 32, 32, seed=6))
        y = tok.decode(z)
    assert z.shape == (1, 16, 2, 4, 4) and torch.isfinite(z).all()
    assert y.shape == (1, 9, 3, 32, 32) and y.min() >= 0 and y.max() <= 1
