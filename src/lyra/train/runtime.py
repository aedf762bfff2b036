"""Small pieces every training entry point shares: the training device, package versions, the run preamble
(seeds: :func:`lyra.seeds.mix_seed`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

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


# ---------------------------------------------------------------------------------------- the recipe skeleton
# Every recipe (lyra.train.recipes.*) runs: device and defaults → TrainConfig from the shared options
# (:func:`train_config`) → Trainer.fit → the stop line (:func:`report_stop`) → on the main process, unless
# --no-export: the final weights (EMA copied in, :func:`final_weights`) → export → reload → test → record.
def train_config(args: argparse.Namespace, out: str | os.PathLike, fit_minutes: float | None,
                 extra: dict[str, Any], **overrides: Any) -> Any:
    """The :class:`~lyra.train.TrainConfig` of the options every recipe shares (:func:`add_run_arguments`,
    :func:`add_optimizer_arguments`): ``extra`` goes into the checkpoints; ``overrides`` set any other field
    (``grad_accum``, ``print_every``, ``ema_decay`` …)."""
    from lyra.train import TrainConfig

    fields: dict[str, Any] = dict(
        out_dir=str(out), steps=args.steps, lr=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup,
        schedule=args.schedule, min_lr_ratio=args.min_lr_ratio, grad_clip=args.grad_clip or None, cpu=args.cpu,
        seed=args.seed, checkpoint_every=args.ckpt_every, log_every=args.log_every, ema_decay=args.ema or None,
        max_minutes=fit_minutes, time_budget_minutes=args.time_budget, resume=args.resume,
        progress=not args.no_progress, extra=extra)
    fields.update(overrides)
    return TrainConfig(**fields)


def report_stop(trainer: Any, result: Any, seconds: float, note: str = "") -> None:
    """The one line every recipe prints when its fit stops (main process only): the step, why, the time of this
    invocation and in all, the checkpoint (and ``note``)."""
    if trainer.accelerator.is_main_process:
        print(f"stopped at step {result.step} of {trainer.total_steps} ({result.reason}); "
              f"{seconds:.0f} s this invocation, {result.elapsed_s:.0f} s in all; "
              f"checkpoint {result.checkpoint}{note}", flush=True)


def final_weights(trainer: Any, fresh: Any, state: dict[str, Any] | None = None) -> Any:
    """``fresh`` (a new model of the trained architecture) holding the trained weights — ``state`` if given (a
    state dict gathered across processes), else the unwrapped model's — with the EMA weights copied in when the
    run kept an EMA. Returns ``fresh``."""
    fresh.load_state_dict(trainer.unwrapped_model.state_dict() if state is None else state)
    if trainer.ema is not None:
        trainer.ema.copy_to(fresh)
    return fresh
