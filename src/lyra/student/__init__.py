"""The student: Lyra's 3DGS decoder (bidirectional Mamba-2 + Transformer), its Gaussian activations, and its
inference (:mod:`~lyra.student.inference`: decode, render; :mod:`~lyra.student.latents`: the tokenizer adapter
and the latent cache; :mod:`~lyra.student.pretrained`: the export folder)."""

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
    decode_at_time,
    frames_at_time,
    source_time_latents,
    target_time_latents,
)
from lyra.student.heads import GaussianActivations, raw_to_gaussians
from lyra.student.inference import PRUNE_RATIO, decode, decode_sample, decode_sample_at_time, plucker_of, render_sample
from lyra.student.latents import LatentCache, RawVideoEncoder, raw_video_encoder
from lyra.student.mamba2 import BiMamba2, Mamba2Block, mamba_ssm_available, ssd_chunked

__all__ = [
    "PRESETS", "PRUNE_RATIO", "BiMamba2", "DecoderConfig", "GaussianActivations", "LatentCache", "LatentDecoder",
    "Mamba2Block", "RawVideoEncoder", "VideoEncoder", "clean_state_dict", "decode", "decode_at_time",
    "decode_sample", "decode_sample_at_time", "decoder_config", "frames_at_time", "load_official_checkpoint",
    "load_state_dict_strict", "mamba_ssm_available", "plucker_latents", "plucker_of", "raw_to_gaussians",
    "raw_video_encoder", "read_state_dict", "render_sample", "source_time_latents", "ssd_chunked",
    "target_time_latents", "time_latents",
]
