"""The student: Lyra's 3DGS decoder (bidirectional Mamba-2 + Transformer) and its Gaussian activations."""

from lyra.student.checkpoint import (
    clean_state_dict,
    load_official_checkpoint,
    load_state_dict_strict,
    read_state_dict,
)
from lyra.student.decoder import (
    PRESETS,
    DecoderConfig,
    LatentDecoder,
    VideoEncoder,
    decoder_config,
    plucker_latents,
    time_latents,
)
from lyra.student.dynamic import (
    TimeLatentCache,
    decode_at_time,
    frames_at_time,
    source_time_latents,
    target_time_latents,
)
from lyra.student.heads import GaussianActivations, raw_to_gaussians
from lyra.student.mamba2 import BiMamba2, Mamba2Block, mamba_ssm_available, ssd_chunked

__all__ = [
    "PRESETS", "BiMamba2", "DecoderConfig", "GaussianActivations", "LatentDecoder", "Mamba2Block",
    "TimeLatentCache", "VideoEncoder", "clean_state_dict", "decode_at_time", "decoder_config", "frames_at_time",
    "load_official_checkpoint", "load_state_dict_strict", "mamba_ssm_available", "plucker_latents",
    "raw_to_gaussians", "read_state_dict", "source_time_latents", "ssd_chunked", "target_time_latents",
    "time_latents",
]
