"""Small pieces every training entry point shares: the training device, package versions, the entry point, the
time budget and the shared options (seeds: :func:`lyra.seeds.mix_seed`). The recipe skeleton built on them is
:mod:`lyra.train.recipe`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import torch

from lyra.errors import ConfigError, LyraError


def training_device(force_cpu: bool = False) -> str:
    """``cuda:LOCAL_RANK`` when CUDA is there (and not ``force_cpu``), else ``cpu``.

    On CUDA this also enables TF32 matmuls/convolutions and cuDNN autotuning, as every trainer here wants.
    """
    from lyra.weights.hub import pick_device

    if pick_device("cpu" if force_cpu else "auto").type == "cpu":
        return "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"


def package_version(name: str) -> str | None:
    """The installed version of package ``name``, or ``None`` when it cannot be read."""
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001 - any metadata failure just omits the version
        return None


def training_main(parser: argparse.ArgumentParser, run: Callable[..., int], command: str, label: str,
                  argv: list[str] | None = None) -> int:
    """The shared body of a training entry point.

    Parses ``argv`` (default ``sys.argv[1:]``), calls ``run(args, t_process, full_command)`` with the time the
    entry started (for ``--max-minutes``) and the command line recorded in training records, and prints a
    user error (``LyraError``) as one line ``label: error: ...``, returning its exit code.
    """
    t_process = time.perf_counter()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    try:
        return run(args, t_process, f"{command} " + " ".join(argv))
    except LyraError as e:
        print(f"{label}: error: {e}", file=sys.stderr)
        return e.exit_code


def training_minutes(args: argparse.Namespace, t_process: float) -> float | None:
    """Minutes this invocation may train: ``--max-minutes`` less the start-up time already spent and the
    ``--export-reserve`` (unless ``--no-export``); ``None`` without ``--max-minutes``."""
    if args.max_minutes is None:
        return None
    used = (time.perf_counter() - t_process) / 60.0
    reserve = 0.0 if args.no_export else args.export_reserve
    minutes = args.max_minutes - used - reserve
    if minutes <= 0.1:
        raise ConfigError(f"--max-minutes {args.max_minutes} leaves no time to train after start-up and "
                          f"the export reserve ({reserve} min)")
    return minutes


def add_run_arguments(parser: argparse.ArgumentParser, export_reserve: float = 1.5) -> None:
    """The options of a resumable, chunked training run (``--out --steps --max-minutes --export-reserve
    --time-budget --until --resume``) that every trainer shares; read back by :func:`training_minutes`."""
    parser.add_argument("--out", required=True, help="run folder (checkpoints, metrics.csv, export/)")
    parser.add_argument("--steps", type=int, default=20000, help="optimiser steps in total (all chunks)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="wall-time limit of this invocation (from process start): stop, checkpoint, export")
    parser.add_argument("--export-reserve", type=float, default=export_reserve, metavar="MIN",
                        help=f"minutes of --max-minutes kept for the export and test evaluation "
                        f"(default {export_reserve})")
    parser.add_argument("--time-budget", type=float, default=None, metavar="MIN",
                        help="fit the whole run (all chunks) into MIN minutes of training: sets --steps from the "
                        "speed measured early")
    parser.add_argument("--until", type=int, default=None, help="stop this invocation at this step (a chunk)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                        help="continue from the latest checkpoint in --out (a fresh start if there is none) or CKPT")


def add_optimizer_arguments(parser: argparse.ArgumentParser, lr: float, warmup: int, min_lr_ratio: float = 0.05,
                            weight_decay: float = 0.01) -> None:
    """AdamW / schedule / EMA / seed options with the given trainer's defaults."""
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="cosine")
    parser.add_argument("--min-lr-ratio", type=float, default=min_lr_ratio)
    parser.add_argument("--weight-decay", type=float, default=weight_decay)
    parser.add_argument("--grad-clip", type=float, default=1.0)
    parser.add_argument("--ema", type=float, default=0.999, help="EMA decay (0: off; exported weights are the EMA)")
    parser.add_argument("--seed", type=int, default=0)
