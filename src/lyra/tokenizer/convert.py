"""Convert NVIDIA's released Cosmos tokenizer (TorchScript) to a diffusers-format folder lyra loads.

GEN3C and Lyra use ``nvidia/Cosmos-Tokenize1-CV8x8x8-720p``, released as ``autoencoder.jit`` (or
``encoder.jit`` + ``decoder.jit``) with the latent statistics in ``mean_std.pt``. This renames the
original parameter names to diffusers' ``AutoencoderKLCosmos`` ones (the same correspondence as
diffusers' ``scripts/convert_cosmos_to_diffusers.py``), checks that every parameter is matched, and
writes ``config.json`` + ``diffusion_pytorch_model.safetensors``::

    python -m lyra.tokenizer.convert ~/Cosmos-Tokenize1-CV8x8x8-720p ~/cosmos-cv8x8x8-diffusers
    LYRA_COSMOS_TOKENIZER=~/cosmos-cv8x8x8-diffusers lyra tokenizer roundtrip clip.mp4 --preset official

Original → diffusers names, applied in order: ``down.i`` → ``down_blocks.i``; ``up.i`` →
``up_blocks.(2−i)`` (Cosmos lists the decoder levels from the highest resolution); ``.block.`` →
``.resnets.``; ``downsample``/``upsample`` → ``downsamplers.0``/``upsamplers.0``; ``mid.block_1/2`` →
``mid_block.resnets.0/1``; ``mid.attn_1.0/1`` → ``mid_block.attentions.0`` / ``temp_attentions.0``;
``q/k/v/proj_out.conv3d`` → ``to_q/to_k/to_v/to_out.0``; factorised convolutions ``X.0.conv3d`` /
``X.1.conv3d`` → ``X.conv_s`` / ``X.conv_t``; ``nin_shortcut.conv3d`` → ``conv_shortcut``; other
``.conv3d`` wrappers dropped. Wavelet buffers of the (un)patcher are not parameters and are dropped.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from pathlib import Path

import torch
from torch import Tensor

from lyra.errors import LyraError, WeightsError
from lyra.tokenizer.presets import LATENT_CHANNELS, preset_config
from lyra.tokenizer.tokenizer import Tokenizer

_RULES: tuple[tuple[str, str], ...] = (
    (r"\bdown\.(\d+)\.", r"down_blocks.\1."),
    (r"\.block\.(\d+)\.", r".resnets.\1."),
    (r"\.downsample\.", ".downsamplers.0."),
    (r"\.upsample\.", ".upsamplers.0."),
    (r"\bmid\.block_1\.", "mid_block.resnets.0."),
    (r"\bmid\.block_2\.", "mid_block.resnets.1."),
    (r"\bmid\.attn_1\.0\.", "mid_block.attentions.0."),
    (r"\bmid\.attn_1\.1\.", "mid_block.temp_attentions.0."),
    (r"\.q\.conv3d\.", ".to_q."),
    (r"\.k\.conv3d\.", ".to_k."),
    (r"\.v\.conv3d\.", ".to_v."),
    (r"\.proj_out\.conv3d\.", ".to_out.0."),
    (r"\.nin_shortcut\.conv3d\.", ".conv_shortcut."),
    (r"\.0\.conv3d\.", ".conv_s."),
    (r"\.1\.conv3d\.", ".conv_t."),
    (r"\.conv3d\.", "."),
)
_DROP = re.compile(r"(wavelets|_arange|patch_size_buffer)$")


def rename_key(key: str, num_up: int = 3) -> str | None:
    """The diffusers name of an original Cosmos parameter name (``None`` for dropped buffers)."""
    if _DROP.search(key):
        return None
    key = re.sub(r"\bup\.(\d+)\.", lambda m: f"up_blocks.{num_up - 1 - int(m.group(1))}.", key)
    for pattern, repl in _RULES:
        key = re.sub(pattern, repl, key)
    return key


def load_original(src: str | os.PathLike) -> tuple[dict[str, Tensor], Tensor | None, Tensor | None]:
    """State dict and ``(mean, std)`` of a released Cosmos tokenizer folder (or one .jit / .pt file)."""
    src = Path(src)
    files = [src] if src.is_file() else [src / "autoencoder.jit"]
    if not src.is_file() and not files[0].is_file():
        files = [src / "encoder.jit", src / "decoder.jit"]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise WeightsError(f"{src}: no autoencoder.jit (or encoder.jit + decoder.jit) found")
    state: dict[str, Tensor] = {}
    for f in files:
        try:
            try:
                with warnings.catch_warnings():  # torch.jit is deprecated, but it is the release's format
                    warnings.simplefilter("ignore", DeprecationWarning)
                    sd = torch.jit.load(str(f), map_location="cpu").state_dict()
            except RuntimeError:
                sd = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:
            raise WeightsError(f"{f}: cannot read the tokenizer weights ({e})") from e
        if f.name == "encoder.jit" and not any(k.startswith("encoder.") for k in sd):
            sd = {("encoder." + k if not k.startswith("quant_conv") else k): v for k, v in sd.items()}
        if f.name == "decoder.jit" and not any(k.startswith("decoder.") for k in sd):
            sd = {("decoder." + k if not k.startswith("post_quant_conv") else k): v for k, v in sd.items()}
        state.update(sd)
    mean = std = None
    ms = (src if src.is_dir() else src.parent) / "mean_std.pt"
    if ms.is_file():
        try:
            mean, std = torch.load(ms, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
            raise WeightsError(f"{ms}: cannot read the latent statistics ({str(e).splitlines()[0][:160]})") from None
    return state, mean, std


def convert(src: str | os.PathLike, dst: str | os.PathLike, dtype: torch.dtype = torch.bfloat16) -> Path:
    """Convert the released tokenizer at ``src`` into a diffusers folder ``dst``; returns ``dst``."""
    original, mean, std = load_original(src)
    renamed: dict[str, Tensor] = {}
    for k, v in original.items():
        new = rename_key(k)
        if new is not None:
            renamed[new] = v
    tok = Tokenizer.from_config(preset_config("official"))
    expected = tok.vae.state_dict()
    missing = sorted(set(expected) - set(renamed))
    unexpected = sorted(set(renamed) - set(expected))
    bad_shape = sorted(k for k in set(expected) & set(renamed) if expected[k].shape != renamed[k].shape)
    if missing or unexpected or bad_shape:
        raise WeightsError(
            f"{src}: does not match the CV8x8x8 architecture: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}), {len(bad_shape)} of another shape "
            f"(e.g. {bad_shape[:3]})"
        )
    tok.vae.load_state_dict({k: v.float() for k, v in renamed.items()})
    if mean is not None and std is not None:
        tok.set_latent_stats(mean.float().reshape(LATENT_CHANNELS, -1), std.float().reshape(LATENT_CHANNELS, -1))
    return tok.save_pretrained(dst, dtype=dtype)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lyra.tokenizer.convert", description=__doc__.splitlines()[0])
    ap.add_argument("src", help="Cosmos-Tokenize1-CV8x8x8-720p folder (autoencoder.jit, mean_std.pt) or a .jit file")
    ap.add_argument("dst", help="output folder (diffusers format)")
    ap.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16")
    args = ap.parse_args(argv)
    try:
        out = convert(args.src, args.dst, getattr(torch, args.dtype))
    except LyraError as e:
        print(f"lyra tokenizer convert: error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
