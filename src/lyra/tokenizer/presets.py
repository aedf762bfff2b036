"""Configurations of the video tokenizer (model keyword arguments; ``_class_name`` names the model class).

``official``
    Cosmos-Tokenize1-CV8x8x8-720p (GEN3C's and Lyra's tokenizer), as diffusers ships it for
    ``nvidia/Cosmos-1.0-Tokenizer-CV8x8x8`` (``AutoencoderKLCosmos``): 8× in time (causally: ``T = 1 + 8k`` frames
    → ``1 + k`` latent frames), 8×8 in space, 16 channels; base width 128, multipliers (2, 4, 4), attention at
    resolution 32 of 1024 (never reached at 8× compression, so only the middle blocks attend), 2 residual blocks
    per level (3 in the decoder). The cosmos-predict1 network config ``continuous_video_8x8x8_720p`` is the same
    network. 105 M parameters.
``tiny_block``
    lyra's block code (:class:`lyra.tokenizer.block_code.BlockCodeAutoencoder`, issue 18): the same causal
    8 × 8 × 8 layout with **96** channels; the encoder is a fixed PCA transform of pixel blocks fitted on training
    worlds, the decoder a learned linear map plus a small refinement CNN. Cheaper on the CPU than the Cosmos
    network and better (docs/benchmarks.md, "Tokenizer"). Trained here on procedural worlds. No shipped teacher
    or student reads it yet: it becomes the ``tiny`` preset's tokenizer with a teacher and students trained on it.
``tiny``
    The tokenizer the shipped tiny teacher and students read: the Cosmos CV8x8x8 design at 3.9 M parameters
    (narrower encoder, somewhat wider decoder, one residual block per level, no attention outside the middle
    blocks), 16 channels.
``tiny_v2``
    The ``tiny`` network fine-tuned with a colour augmentation (not shipped: pass its folder).

The latent statistics (``latents_mean`` / ``latents_std``: C channels × 16 latent frames, channel-major, as in
Cosmos' ``mean_std.pt``) travel in the model config; a tokenizer trained here gets its own from its training data.
"""

from __future__ import annotations

import copy
from typing import Any

from lyra.errors import ConfigError

#: Latent channels, temporal and spatial compression of the Cosmos CV8x8x8 design (the official tokenizer).
LATENT_CHANNELS = 16
TEMPORAL_COMPRESSION = 8
SPATIAL_COMPRESSION = 8
#: Latent frames the per-frame statistics cover (Cosmos: 121 frames → 16 latent frames).
STAT_FRAMES = 16

_COMMON: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": LATENT_CHANNELS,
    "resolution": 1024,
    "patch_size": 4,
    "patch_type": "haar",
    "scaling_factor": 1.0,
    "spatial_compression_ratio": SPATIAL_COMPRESSION,
    "temporal_compression_ratio": TEMPORAL_COMPRESSION,
}

OFFICIAL: dict[str, Any] = {
    **_COMMON,
    "encoder_block_out_channels": (128, 256, 512, 512),
    "decode_block_out_channels": (256, 512, 512, 512),
    "attention_resolutions": (32,),
    "num_layers": 2,
}

TINY: dict[str, Any] = {
    **_COMMON,
    "encoder_block_out_channels": (32, 64, 96, 96),
    "decode_block_out_channels": (48, 96, 128, 128),
    "attention_resolutions": (),
    "num_layers": 1,
}

#: ``tiny_v2``: the ``tiny`` network fine-tuned with saturated-colour augmentation (not shipped).
TINY_V2: dict[str, Any] = copy.deepcopy(TINY)

#: ``tiny_block``: the block code (96 channels, 8 × 8 × 8; 32-channel refinement at 1/4 resolution, 2 residual blocks).
TINY_BLOCK: dict[str, Any] = {
    "_class_name": "BlockCodeAutoencoder",
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 96,
    "temporal_compression_ratio": TEMPORAL_COMPRESSION,
    "spatial_compression_ratio": SPATIAL_COMPRESSION,
    "refine_channels": 32,
    "refine_blocks": 2,
    "refine_stride": 4,
}

PRESETS: dict[str, dict[str, Any]] = {"tiny": TINY, "official": OFFICIAL, "tiny_v2": TINY_V2,
                                      "tiny_block": TINY_BLOCK}


def preset_config(name: str) -> dict[str, Any]:
    """A copy of the ``AutoencoderKLCosmos`` keyword arguments of preset ``name`` (no latent statistics)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown tokenizer preset {name!r}; choose one of {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
