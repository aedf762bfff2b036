"""A tiny random diffusers text-to-image pipeline, built offline, for testing ``lyra generate --prompt``.

:func:`save_tiny_t2i_pipeline` builds a real :class:`diffusers.StableDiffusionPipeline` with random weights — a
two-level ``UNet2DConditionModel`` (channels 8/16), a two-level ``AutoencoderKL`` (so 2× latent downsampling), a
two-layer ``CLIPTextModel`` and a ``CLIPTokenizer`` made from a small byte-level BPE vocabulary written here —
and saves it with ``save_pretrained``. It takes about a second and well under 1 MB; nothing is downloaded.
Its images are noise-like but come out of every real stage (tokenizer → text encoder → UNet sampling loop with
classifier-free guidance → VAE decode → post-processing), which is what the tests need to check.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

#: Sequence length of the tiny tokenizer and text encoder (real CLIP: 77).
MAX_TOKENS = 16
#: Width of the tiny text encoder's hidden states (= the UNet's cross-attention width).
TEXT_WIDTH = 16


def _write_clip_vocab(folder: Path) -> None:
    """``vocab.json`` + ``merges.txt`` for :class:`transformers.CLIPTokenizer`: the two special tokens, every
    lower-case letter and digit (alone, and as the end of a word: ``"a</w>"``), a few punctuation marks, and
    merges that make ``red``, ``room`` and ``blue`` single tokens."""
    symbols = list(string.ascii_lowercase + string.digits + ".,!?'-")
    merges = ["r e", "re d</w>", "r o", "ro o", "roo m</w>", "b l", "bl u", "blu e</w>"]
    vocab: dict[str, int] = {}
    for tok in ["<|startoftext|>", "<|endoftext|>"] + symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(tok, len(vocab))
    for merge in merges:
        vocab.setdefault(merge.replace(" ", ""), len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def tiny_t2i_components(seed: int = 0, workdir: str | Path | None = None) -> dict[str, object]:
    """The components of a tiny random ``StableDiffusionPipeline`` (as diffusers' own ``get_dummy_components``).

    ``workdir`` (a folder, default a temporary one) receives the tokenizer's ``vocab.json`` / ``merges.txt``.
    """
    import contextlib
    import tempfile

    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=4, sample_size=32)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=1000, hidden_size=TEXT_WIDTH, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=MAX_TOKENS, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=TEXT_WIDTH))
    with tempfile.TemporaryDirectory() if workdir is None else contextlib.nullcontext(workdir) as d:
        _write_clip_vocab(Path(d))
        tokenizer = CLIPTokenizer.from_pretrained(str(d), model_max_length=MAX_TOKENS)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return {"unet": unet.eval(), "vae": vae.eval(), "text_encoder": text_encoder.eval(), "tokenizer": tokenizer,
            "scheduler": scheduler, "safety_checker": None, "feature_extractor": None, "image_encoder": None}


def save_tiny_t2i_pipeline(folder: str | Path, seed: int = 0) -> Path:
    """Build the tiny random ``StableDiffusionPipeline`` and ``save_pretrained`` it into ``folder`` (created);
    returns ``folder``. The result loads with ``AutoPipelineForText2Image.from_pretrained(folder,
    local_files_only=True)`` like any downloaded diffusers model folder."""
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipe = StableDiffusionPipeline(**tiny_t2i_components(seed), requires_safety_checker=False)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder
