"""Self-distillation: the teacher's synthetic data (SDG) and the student trained on it.

* :mod:`~lyra.shards` — the SDG shard format: writer, checked reader, manifest,
  :class:`ShardDataset` (what the student trainer reads).
* :mod:`~lyra.distill.sdg` — the generation loop (``lyra sdg``): sources, planning, rank split, resume.
"""

from lyra.shards import (
    FORMAT_VERSION,
    SdgSample,
    ShardDataset,
    read_manifest,
    read_shard,
    read_shard_header,
    sample_cameras,
    write_shard,
)

__all__ = [
    "FORMAT_VERSION",
    "SdgSample",
    "ShardDataset",
    "read_manifest",
    "read_shard",
    "read_shard_header",
    "sample_cameras",
    "write_shard",
]
