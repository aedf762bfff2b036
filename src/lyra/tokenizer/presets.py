"""Configurations of the video tokenizer (diffusers ``AutoencoderKLCosmos`` keyword arguments).

All presets compress 8× in time (causally: ``T = 1 + 8k`` frames → ``1 + k`` latent frames), 8×8 in
space, to 16 latent channels, with the same block design (Haar patching 4×4×4, factorised causal
convolutions, one spatial + one causal temporal attention in the middle blocks).

``official``
    Cosmos-Tokenize1-CV8x8x8-720p (GEN3C's and Lyra's tokenizer), as diffusers ships it for
    ``nvidia/Cosmos-1.0-Tokenizer-CV8x8x8``: base width 128, multipliers (2, 4, 4), attention at
    resolution 32 of 1024 (never reached at 8× compression, so only the middle blocks attend),
    2 residual blocks per level (3 in the decoder). The cosmos-predict1 network config
    ``continuous_video_8x8x8_720p`` is the same network. 105 M parameters.
``tiny``
    Small enough for CPU inference and ≤ 8 MB in fp16 (3.9 M parameters): narrower encoder and a
    somewhat wider decoder (decoding detail needs more capacity than encoding it), one residual block
    per level, no attention outside the middle blocks. Trained here on procedural worlds.
``tiny_v2``
    The ``tiny`` network, fine-tuned from its weights with a colour augmentation (hue rotation and
    saturation gain) so that saturated colours survive a round trip. A separate weights folder: the
    shipped teacher and students read ``tiny`` latents until they are retrained on ``tiny_v2``.

The latent statistics (``latents_mean`` / ``latents_std``: 16 channels × 16 latent frames,
channel-major, as in Cosmos' ``mean_std.pt``) travel in the model config; a tokenizer trained here gets
its own from its training data.
"""

from __future__ import annotations

import copy
from typing import Any

from lyra.errors import ConfigError

#: Latent channels, temporal and spatial compression: fixed by the Cosmos CV8x8x8 design.
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

#: ``tiny_v2``: the ``tiny`` network (same CV8x8x8 latents, 16 channels, same size and CPU cost), fine-tuned from
#: the ``tiny`` weights with saturated-colour augmentation (issue 18); shipped in ``weights/tokenizer_tiny_v2``
#: beside ``tiny``, which the shipped teacher and students still read. See docs/benchmarks.md for what was measured.
TINY_V2: dict[str, Any] = copy.deepcopy(TINY)

PRESETS: dict[str, dict[str, Any]] = {"tiny": TINY, "official": OFFICIAL, "tiny_v2": TINY_V2}


def preset_config(name: str) -> dict[str, Any]:
    """A copy of the ``AutoencoderKLCosmos`` keyword arguments of preset ``name`` (no latent statistics)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown tokenizer preset {name!r}; choose one of {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
