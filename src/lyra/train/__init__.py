"""What every trainer here shares: the accelerate loop, atomic checkpoints with exact resume,
resumable batch sources, LR schedules, EMA and the CSV metrics log."""

from lyra.train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    resume_latest,
    save_checkpoint,
    verify_checkpoint,
)
from lyra.train.data import IndexedBatches, ResumableLoader, StatefulBatches
from lyra.train.ema import EMA
from lyra.train.metrics_log import MetricsLog
from lyra.train.schedule import lr_multiplier
from lyra.train.trainer import TrainConfig, Trainer, TrainResult

__all__ = [
    "CheckpointError",
    "EMA",
    "IndexedBatches",
    "MetricsLog",
    "ResumableLoader",
    "StatefulBatches",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "lr_multiplier",
    "resume_latest",
    "save_checkpoint",
    "verify_checkpoint",
]
