"""The block-code tokenizer (``tiny``): PCA encoder, learned decoder, statistics, files and its training recipe."""

from __future__ import annotations

import json

import pytest
import torch

from lyra.errors import WeightsError
from lyra.tokenizer import Tokenizer
from lyra.tokenizer.block_code import BlockCodeAutoencoder, BlockCovariance, fit_block_code

# a small layout: 2 frames × 4 × 4 pixel blocks (first frame: 48 values, later blocks: 96 values)
SMALL = {"_class_name": "BlockCodeAutoencoder", "latent_channels": 12, "temporal_compression_ratio": 2,
         "spatial_compression_ratio": 4, "refine_channels": 8, "refine_blocks": 1, "refine_stride": 2}


def _videos(n: int, frames: int = 5, h: int = 16, w: int = 24, seed: int = 0) -> list[torch.Tensor]:
    """Smooth random videos [2, frames, 3, h, w] in [0, 1] (low-rank blocks, as images are)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        coarse = torch.rand(2, frames, 3, h // 4, w // 4, generator=g)
        v = torch.nn.functional.interpolate(coarse.flatten(0, 1), size=(h, w), mode="bilinear", align_corners=False)
        out.append((v.reshape(2, frames, 3, h, w) + 0.05 * torch.rand(2, frames, 3, h, w, generator=g)).clamp(0, 1))
    return out


def test_preset_is_the_block_code_with_the_cosmos_layout():
    tok = Tokenizer.from_config("tiny_block")
    assert isinstance(tok.vae, BlockCodeAutoencoder) and not tok.is_cosmos
    assert (tok.latent_channels, tok.temporal_compression, tok.spatial_compression) == (96, 8, 8)
    assert tok.latent_shape_of(17, 176, 320) == (96, 3, 22, 40)
    assert Tokenizer.from_config("tiny").is_cosmos


@torch.no_grad()
def test_blocks_round_trip_and_full_rank_code_is_exact():
    tok = Tokenizer.from_config({**SMALL, "latent_channels": 48, "refine_blocks": 0})
    vae = tok.vae
    x = torch.rand(2, 3, 5, 16, 24) * 2 - 1
    first, rest = vae.first_blocks(x), vae.rest_blocks(x)
    assert first.shape == (2, 4, 6, 48) and rest.shape == (2, 2, 4, 6, 96)
    assert torch.equal(vae._unblock(first, rest, 3), x)  # the blocking is a permutation
    fit_block_code(vae, _videos(3))
    v = _videos(1, seed=5)[0]
    # 48 of 48 first-frame components: frame 0 comes back exactly; later frames keep only half their dimensions
    y = tok.decode(tok.encode(v))
    assert (y[:, 0] - v[:, 0]).abs().max() < 1e-4
    assert (y[:, 1:] - v[:, 1:]).abs().max() > 1e-3


@torch.no_grad()
def test_pca_error_is_the_dropped_variance_and_the_basis_is_orthonormal():
    tok = Tokenizer.from_config({**SMALL, "refine_blocks": 0})
    vids = _videos(4)
    report = fit_block_code(tok.vae, vids)
    vae = tok.vae
    eye = torch.eye(12)
    assert torch.allclose(vae.rest_basis.T @ vae.rest_basis, eye, atol=1e-5)
    assert torch.allclose(vae.first_basis.T @ vae.first_basis, eye, atol=1e-5)
    # on its own training blocks the mean squared error per block is the sum of the dropped eigenvalues
    acc = BlockCovariance(vae)
    for v in vids:
        acc.add(v.permute(0, 2, 1, 3, 4) * 2 - 1)
    _, _, vals = acc.principal("rest", 12)
    x = torch.cat([v.permute(0, 2, 1, 3, 4) * 2 - 1 for v in vids])
    rec = vae.decode_latents(vae.encode_latents(x))
    err = (vae.rest_blocks(rec) - vae.rest_blocks(x)).double().square().sum(-1).mean()
    assert float(err) == pytest.approx(float(vals[12:].sum()), rel=1e-3)
    assert 0.5 < report["kept_variance_rest"] < 1.0
    # each channel's std: the root of its eigenvalue (fp16-rounded, as the file stores it)
    assert torch.allclose(vae.code_std[1], vals[:12].sqrt().float(), rtol=2e-3)
    mean, std = tok.latent_stats(3)
    assert torch.all(mean == 0)
    assert torch.allclose(std[0, :, 1:, 0, 0], vae.code_std[1].view(12, 1).expand(12, 2))
    assert torch.allclose(std[0, :, 0, 0, 0], vae.code_std[0])
    assert report["latent_std_rest_min_max"][1] == pytest.approx(float(vals[0].sqrt()), rel=2e-3)


def test_refiner_starts_at_zero_and_training_leaves_the_encoder_alone():
    tok = Tokenizer.from_config(SMALL)
    fit_block_code(tok.vae, _videos(2))
    vae = tok.vae
    x = _videos(1, seed=3)[0].permute(0, 2, 1, 3, 4) * 2 - 1
    with torch.no_grad():
        z = vae.encode_latents(x)
        assert torch.equal(vae.decode_latents(z), vae.decode_linear(z))
    before = {k: v.clone() for k, v in vae.named_buffers()}
    opt = torch.optim.SGD(vae.parameters(), lr=0.1)
    for _ in range(3):
        loss = (vae(x).sample - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in vae.named_buffers())  # the latents do not move
    assert vae.refiner is not None and float(vae.refiner.conv_out.weight.detach().abs().sum()) > 0


def test_save_load_round_trip_and_strict_loading(tmp_path):
    tok = Tokenizer.from_config(SMALL)
    fit_block_code(tok.vae, _videos(2))
    tok.save_pretrained(tmp_path / "t")
    cfg = json.loads((tmp_path / "t" / "config.json").read_text())
    assert cfg["_class_name"] == "BlockCodeAutoencoder" and len(cfg["latents_std"]) == 12 * 16
    back = Tokenizer.from_pretrained(tmp_path / "t")
    v = _videos(1, seed=9)[0]
    with torch.no_grad():
        assert torch.allclose(back.encode(v), tok.encode(v), atol=2e-2)  # fp16 file
        assert torch.allclose(back.roundtrip(v), tok.roundtrip(v), atol=2e-2)
    assert back.num_parameters() == tok.num_parameters()
    # a file without the fitted encoder is refused, not silently left at its identity initialisation
    from safetensors.torch import load_file, save_file

    f = tmp_path / "t" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(f))
    del state["rest_basis"]
    save_file(state, str(f))
    with pytest.raises(WeightsError, match="1 missing"):
        Tokenizer.from_pretrained(tmp_path / "t")


def test_fit_only_export_from_the_recipe(tmp_path):
    from lyra.train.recipes.tokenizer import main

    out = tmp_path / "run"
    args = ["--out", str(out), "--config", "tiny_block", "--fit-only", "--data", "synthetic", "--frames", "9", "--size",
            "32x48", "--batch-size", "2", "--fit-batches", "2", "--test-worlds", "1", "--no-progress", "--cpu"]
    assert main(args) == 0
    rec = json.loads((out / "export" / "training_record.json").read_text())
    assert rec["steps"] == 0 and rec["fit_only"] and rec["test"]["videos"] == 6 and rec["test"]["psnr"] > 15
    tok = Tokenizer.from_pretrained(out / "export")
    assert float(tok.vae.code_std[1].max()) == pytest.approx(rec["block_code_fit"]["latent_std_rest_min_max"][1],
                                                            rel=1e-3)
    # the fit's statistics survive a decoder fine-tune from the export (teachers are trained on them)
    out2 = tmp_path / "run2"
    assert main(["--out", str(out2), "--init-from", str(out / "export"), "--data", "synthetic", "--frames", "9",
                 "--size", "32x48", "--batch-size", "2", "--steps", "2", "--warmup", "1", "--test-worlds", "1",
                 "--no-progress", "--cpu"]) == 0
    tuned = Tokenizer.from_pretrained(out2 / "export")
    assert tuned.config.latents_std == tok.config.latents_std
    assert torch.equal(tuned.vae.rest_basis, tok.vae.rest_basis)
