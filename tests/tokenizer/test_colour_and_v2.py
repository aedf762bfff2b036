"""Issue 18, tokenizer: colour augmentation, saturated colour patches, ΔE00 in the evaluation, tokenizers of other
compression factors and channel counts, the ``tiny_v2`` preset, and ``lyra tokenizer eval``."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lyra.cli import main
from lyra.errors import ConfigError
from lyra.tokenizer import Tokenizer
from lyra.tokenizer.presets import PRESETS, preset_config
from lyra.tokenizer.tokenizer import preset_weights_path
from lyra.train.recipes.tokenizer import evaluate_reconstruction
from lyra.train.recipes.tokenizer_data import VideoBatches, augment, colour_augment, colour_patch_videos


def _saturation(x: torch.Tensor) -> torch.Tensor:
    return (x.amax(dim=-3) - x.amin(dim=-3)).mean()


def test_colour_augment_keeps_greys_and_raises_saturation():
    g = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(6, 3, 3, 8, 8, generator=g)
    x[0] = 0.5  # a grey video stays grey under any hue rotation and gain
    y = colour_augment(x, seed=3, share=1.0)
    torch.testing.assert_close(y[0], x[0], atol=1e-5, rtol=0)
    assert float(_saturation(y[1:])) > float(_saturation(x[1:]))
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    torch.testing.assert_close(colour_augment(x, seed=3, share=1.0), y)  # deterministic in the seed
    assert torch.equal(colour_augment(x, seed=3, share=0.0), x)
    # share 0 draws what augment drew before the colour option existed
    assert torch.equal(augment(x, 7), augment(x, 7, colour=0.0))
    assert not torch.equal(augment(x, 7), augment(x, 7, colour=1.0))


def test_colour_augment_makes_saturated_reds_reachable():
    # a muted brick red with gain up to 2.5 reaches fully saturated reds in some draws
    x = torch.tensor([0.6, 0.3, 0.25]).view(1, 1, 3, 1, 1).expand(64, 1, 3, 1, 1).contiguous()
    y = colour_augment(x, seed=0, share=1.0).view(64, 3)
    sat = y.amax(-1) - y.amin(-1)
    assert float(sat.max()) > 0.7


def test_colour_patches_and_masks():
    v, m = colour_patch_videos(17, 176, 320)
    assert v.shape == (4, 17, 3, 176, 320) and m.shape == (4, 1, 1, 176, 320)
    assert 0.1 < float(m.float().mean()) < 0.4
    inside = v[0, :, :, m[0, 0, 0]]  # [T, 3, N] patch pixels: saturated, never the grey background
    assert float((inside.amax(1) - inside.amin(1)).min()) > 0.45
    assert v[0, 0, 0, 40, 30].tolist() == pytest.approx(1.0)  # first patch: pure red
    assert v[0, 0, 1:, 40, 30].tolist() == pytest.approx([0.0, 0.0])


def test_crop_of_training_batches():
    data = VideoBatches("synthetic", batch_size=2, frames=9, height=32, width=48, crop=(16, 24), colour_aug=0.5)
    a = data(3)
    assert a.shape == (2, 9, 3, 16, 24)
    assert torch.equal(a, data(3))
    with pytest.raises(ConfigError, match="larger than the videos"):
        VideoBatches("synthetic", batch_size=1, frames=9, height=16, width=16, crop=(24, 8))(0)


def test_evaluation_reports_delta_e_and_masks_it():
    class Fake:
        device = torch.device("cpu")

        def roundtrip(self, v):
            out = v.clone()
            out[..., :8, :] = 0.0  # top rows black
            return out

    v = torch.full((2, 9, 3, 16, 16), 0.5)
    everywhere = evaluate_reconstruction(Fake(), [v])
    mask = torch.zeros(2, 1, 1, 16, 16, dtype=torch.bool)
    mask[..., 8:, :] = True  # only the untouched rows
    masked = evaluate_reconstruction(Fake(), [v], [mask])
    assert everywhere["delta_e2000"] > 10 and len(everywhere["delta_e2000_per_frame"]) == 9
    assert masked["delta_e2000"] == pytest.approx(0.0, abs=1e-3)
    empty = evaluate_reconstruction(Fake(), [v], [torch.zeros_like(mask)])
    assert math.isnan(empty["delta_e2000"])  # no pixels: no score, never a perfect one


@pytest.mark.parametrize(("channels", "ct", "cs"), [(32, 8, 8), (16, 4, 8)])
def test_other_channel_counts_and_compression_round_trip(channels, ct, cs):
    torch.manual_seed(0)
    tok = Tokenizer.from_config("tiny", latent_channels=channels, temporal_compression_ratio=ct,
                                spatial_compression_ratio=cs).eval()
    assert (tok.latent_channels, tok.temporal_compression, tok.spatial_compression) == (channels, ct, cs)
    v = torch.rand(1, 9, 3, 16, 24)
    with torch.no_grad():
        z = tok.encode(v)
        assert tuple(z.shape[1:]) == tok.latent_shape_of(9, 16, 24) == (channels, 1 + 8 // ct, 2, 3)
        assert tok.roundtrip(v).shape == v.shape
    mean, std = torch.zeros(channels, 2), torch.ones(channels, 2)
    tok.set_latent_stats(mean, std)
    assert tok.latent_stats(3)[0].shape == (1, channels, 3, 1, 1)
    with pytest.raises(ConfigError, match=f"1 \\+ {ct}k frames"):
        tok.encode(torch.rand(1, 1 + ct + 1, 3, 16, 24))


def test_tiny_v2_preset_is_the_tiny_network_in_its_own_folder():
    assert "tiny_v2" in PRESETS
    assert preset_config("tiny_v2") == preset_config("tiny")
    assert preset_weights_path("tiny_v2").name == "tokenizer_tiny_v2"
    assert preset_weights_path("tiny").name == "tokenizer_tiny"


@pytest.mark.skipif(not (preset_weights_path("tiny_v2") / "diffusion_pytorch_model.safetensors").is_file(),
                    reason="tiny_v2 weights not shipped")
def test_shipped_tiny_v2_loads_and_round_trips():
    tok = Tokenizer.from_preset("tiny_v2")
    folder = preset_weights_path("tiny_v2")
    record = json.loads((folder / "training_record.json").read_text())
    assert (folder / "diffusion_pytorch_model.safetensors").stat().st_size <= 10_000_000
    assert record["test"]["videos"] == 96 and "delta_e2000" in record["test"]
    v = torch.rand(1, 9, 3, 32, 48)
    with torch.no_grad():
        z = tok.encode(v)
        assert z.shape == (1, 16, 2, 4, 6)
        assert tok.decode(z).shape == v.shape
    mean, _ = tok.latent_stats(2)
    assert bool(torch.isfinite(mean).all())
    # tiny stays what the shipped teacher and students read: a different set of weights
    tiny = Tokenizer.from_preset("tiny")
    assert any(not torch.equal(a, b) for a, b in zip(tiny.state_dict().values(), tok.state_dict().values(),
                                                     strict=True))


def test_cli_eval_colour_patches_json(tmp_path, capsys):
    torch.manual_seed(0)
    weights = tmp_path / "tok"
    Tokenizer.from_config("tiny").save_pretrained(weights)
    out = tmp_path / "eval.json"
    rc = main(["tokenizer", "eval", "--weights", str(weights), "--worlds", "0", "--json", str(out), "--device", "cpu",
               "--patch-video", "9x96x192"])
    text = capsys.readouterr().out
    assert rc == 0 and "saturated colour patches (4 videos): ΔE00" in text
    result = json.loads(out.read_text())
    assert result["colour_patches"]["delta_e2000"] > 3  # random weights lose colour
    assert "test" not in result
    assert main(["tokenizer", "eval", "--weights", str(weights), "--worlds", "0", "--no-patches"]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    assert main(["tokenizer", "eval", "--weights", str(weights), "--worlds", "0", "--patch-video", "9x48"]) == 2
    assert "TxHxW" in capsys.readouterr().err


@pytest.mark.skipif((preset_weights_path("tiny_v2") / "diffusion_pytorch_model.safetensors").is_file(),
                    reason="tiny_v2 weights are shipped")
def test_tiny_v2_without_weights_says_how_to_train_them():
    from lyra.errors import WeightsError

    with pytest.raises(WeightsError, match="'tiny_v2' tokenizer weights are missing.*tokenizer_gpu.sh"):
        Tokenizer.from_preset("tiny_v2")
