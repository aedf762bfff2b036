"""Converting NVIDIA's TorchScript Cosmos tokenizer: every original name maps onto the diffusers model."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from lyra.errors import WeightsError
from lyra.tokenizer import Tokenizer
from lyra.tokenizer.convert import convert, rename_key


def original_name(key: str) -> str:
    """The Cosmos (cosmos_predict1 tokenizer) name of a diffusers AutoencoderKLCosmos parameter.

    Written from the original module layout: factorised convolutions are ``Sequential(CausalConv3d
    spatial, CausalConv3d temporal)`` whose convolution sits in ``.conv3d``; decoder levels ``up.i`` count
    from the highest resolution; the middle block is ``block_1, attn_1 = Sequential(spatial, temporal),
    block_2``.
    """
    k = key
    k = re.sub(r"up_blocks\.(\d+)\.", lambda m: f"up.{2 - int(m.group(1))}.", k)
    k = re.sub(r"down_blocks\.(\d+)\.", r"down.\1.", k)
    k = k.replace("mid_block.resnets.0.", "mid.block_1.").replace("mid_block.resnets.1.", "mid.block_2.")
    k = k.replace("mid_block.attentions.0.", "mid.attn_1.0.").replace("mid_block.temp_attentions.0.", "mid.attn_1.1.")
    k = re.sub(r"\.resnets\.(\d+)\.", r".block.\1.", k)
    k = k.replace("downsamplers.0.", "downsample.").replace("upsamplers.0.", "upsample.")
    for new, old in (("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")):
        k = k.replace(f".{new}.", f".{old}.conv3d.")
    k = k.replace(".conv_s.", ".0.conv3d.").replace(".conv_t.", ".1.conv3d.")
    k = k.replace(".conv_shortcut.", ".nin_shortcut.conv3d.")
    k = re.sub(r"(downsample|upsample)\.(conv\d)\.", r"\1.\2.conv3d.", k)
    k = re.sub(r"^(quant_conv|post_quant_conv)\.", r"\1.conv3d.", k)
    return k


def test_every_official_parameter_name_round_trips():
    from accelerate import init_empty_weights

    # parameters on "meta", buffers real. Built under torch.device("meta") instead, tokenizers loaded later in the
    # same process carried meta tensors ("Cannot copy out of meta tensor" in tests/test_photo_cameras.py run after
    # this file); the cause inside diffusers/accelerate was not traced
    with init_empty_weights(include_buffers=False):
        keys = list(Tokenizer.from_config("official").vae.state_dict())
    originals = [original_name(k) for k in keys]
    assert len(set(originals)) == len(keys)
    assert "decoder.up.0.block.2.conv2.1.conv3d.weight" in originals  # highest-resolution decoder level
    assert "encoder.mid.attn_1.1.proj_out.conv3d.weight" in originals
    assert [rename_key(o) for o in originals] == keys
    assert rename_key("encoder.patcher.wavelets") is None


class _Original(nn.Module):
    """A TorchScript-able module holding parameters under the original names."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        for name, value in state.items():
            parts = name.split(".")
            mod: nn.Module = self
            for p in parts[:-1]:
                if not hasattr(mod, p):
                    mod.add_module(p, nn.Module())
                mod = getattr(mod, p)
            mod.register_parameter(parts[-1], nn.Parameter(value, requires_grad=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_convert_a_torchscript_release(tmp_path):
    torch.manual_seed(0)
    ref = Tokenizer.from_config("official")
    state = {original_name(k): v.to(torch.bfloat16) for k, v in ref.vae.state_dict().items()}
    src = tmp_path / "Cosmos-Tokenize1-CV8x8x8-720p"
    src.mkdir()
    torch.jit.save(torch.jit.script(_Original(state)), str(src / "autoencoder.jit"))
    mean, std = torch.randn(256), 0.5 + torch.rand(256)
    torch.save((mean, std), src / "mean_std.pt")
    out = convert(src, tmp_path / "diffusers")
    tok = Tokenizer.from_pretrained(out)
    got = tok.vae.state_dict()
    assert all(torch.equal(got[k], v.to(torch.bfloat16).float()) for k, v in ref.vae.state_dict().items())
    m, s = tok.latent_stats(16)
    assert torch.allclose(m.flatten(), mean.view(16, 16).flatten()) and torch.allclose(s.flatten(), std)


def test_convert_rejects_other_networks(tmp_path):
    src = tmp_path / "x"
    src.mkdir()
    with pytest.raises(WeightsError, match="no autoencoder.jit"):
        convert(src, tmp_path / "out")
    torch.save({"encoder.conv_in.0.conv3d.weight": torch.zeros(1)}, src / "autoencoder.jit")
    with pytest.raises(WeightsError, match="does not match the CV8x8x8 architecture"):
        convert(src, tmp_path / "out")
