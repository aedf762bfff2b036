"""The one training recipe skeleton: what every recipe (:mod:`lyra.train.recipes`) runs, once.

::

    start_run        the training device, the run and export folders, the command line, the time budget
    RecipeRun.config the TrainConfig of the shared options (+ the recipe's checkpoint extras)
    fit              Trainer.fit → the stop line; export_due: unless --no-export, on the main process
    final_weights    the trained weights in a fresh model, the EMA copied in
    training_record  the fields every export's record carries (steps, optimiser, EMA, provenance)
    export_and_test  export → reload as users load it → test → record (the export rewritten with the test)

A recipe supplies only what is its own: the model, its data, its loss, how it saves, reloads and tests.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lyra.train.runtime import package_version, training_device, training_minutes

__all__ = ["RecipeRun", "export_and_test", "export_due", "final_weights", "fit", "provenance", "report_stop",
           "start_run", "train_config", "training_record"]


@dataclass
class RecipeRun:
    """One invocation of a recipe (:func:`start_run`).

    Attributes:
        args: the parsed options (:func:`~lyra.train.runtime.add_run_arguments`,
            :func:`~lyra.train.runtime.add_optimizer_arguments` and the recipe's own; ``--export-to``, ``--cpu``).
        t_process: when the process started (``time.perf_counter``; ``--max-minutes`` counts from it).
        command: the command line recorded in the training record.
        device: ``cpu`` or ``cuda:LOCAL_RANK`` (:func:`~lyra.train.runtime.training_device`).
        out: the run folder (checkpoints, metrics); export_dir: ``--export-to``, default ``out/export``.
    """

    args: argparse.Namespace
    t_process: float
    command: str
    device: str
    out: Path
    export_dir: Path

    @property
    def cuda(self) -> bool:
        """Whether the run trains on a CUDA GPU."""
        return self.device != "cpu"

    def config(self, extra: dict[str, Any], **overrides: Any) -> Any:
        """The :class:`~lyra.train.TrainConfig` of this run (:func:`train_config`), its time limit measured now
        (``--max-minutes`` less the start-up already spent and the export reserve)."""
        return train_config(self.args, self.out, training_minutes(self.args, self.t_process), extra, **overrides)


def start_run(args: argparse.Namespace, t_process: float | None = None, command: str | None = None) -> RecipeRun:
    """The preamble of every recipe's ``run()``: the process start (default now), the command line (default
    ``sys.argv``), the training device (``--cpu`` forces the CPU), the run folder and the export folder."""
    out = Path(args.out)
    return RecipeRun(args=args, t_process=time.perf_counter() if t_process is None else t_process,
                     command=command or " ".join(sys.argv), device=training_device(force_cpu=args.cpu), out=out,
                     export_dir=Path(args.export_to) if args.export_to else out / "export")


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


def fit(run: RecipeRun, trainer: Any, note: str = "", cleanup: Callable[[], None] | None = None) -> Any:
    """``trainer.fit(until=--until)`` (then ``cleanup``, even on failure) and the stop line (with ``note``).
    Returns the :class:`~lyra.train.TrainResult`."""
    t_fit = time.perf_counter()
    try:
        result = trainer.fit(until=run.args.until)
    finally:
        if cleanup is not None:
            cleanup()
    report_stop(trainer, result, time.perf_counter() - t_fit, note)
    return result


def export_due(run: RecipeRun, trainer: Any) -> bool:
    """Whether this process exports: not with ``--no-export``, and only the main process."""
    return not run.args.no_export and trainer.accelerator.is_main_process


def final_weights(trainer: Any, fresh: Any, state: dict[str, Any] | None = None) -> Any:
    """``fresh`` (a new model of the trained architecture) holding the trained weights — ``state`` if given (a
    state dict gathered across processes), else the unwrapped model's — with the EMA weights copied in when the
    run kept an EMA. Returns ``fresh``."""
    fresh.load_state_dict(trainer.unwrapped_model.state_dict() if state is None else state)
    if trainer.ema is not None:
        trainer.ema.copy_to(fresh)
    return fresh


_NO_EMA_GIVEN = object()


def training_record(run: RecipeRun, trainer: Any, result: Any, model: str, parameters: int,
                    fields: dict[str, Any], versions: Sequence[str] = ("accelerate",),
                    ema: Any = _NO_EMA_GIVEN) -> dict[str, Any]:
    """The training record of an export: ``model`` (a description) and its ``parameters``; ``steps``,
    ``total_steps``, ``complete``, ``train_seconds``; the ``optimizer`` options; ``ema`` (default ``--ema``, ``None``
    when off); then ``fields`` (the recipe's own: data, losses, sizes, …); then ``final_train_metrics``,
    ``command``, ``date`` (UTC), ``device`` (the GPU's name, else the processor) and package ``versions`` (torch and
    ``versions``)."""
    args = run.args
    return {
        "model": model,
        "parameters": parameters,
        "steps": result.step,
        "total_steps": trainer.total_steps,
        "complete": result.step >= trainer.total_steps,
        "train_seconds": round(result.elapsed_s, 1),
        "optimizer": {"name": "AdamW", "lr": args.lr, "weight_decay": args.weight_decay, "warmup": args.warmup,
                      "schedule": args.schedule, "min_lr_ratio": args.min_lr_ratio, "grad_clip": args.grad_clip},
        "ema": (args.ema or None) if ema is _NO_EMA_GIVEN else ema,
        **fields,
        "final_train_metrics": result.metrics,
        **provenance(run, versions),
    }


def provenance(run: RecipeRun, versions: Sequence[str] = ()) -> dict[str, Any]:
    """Where an export comes from: ``command``, ``date`` (UTC), ``device`` (the GPU's name, else the processor) and
    package ``versions`` (torch and ``versions``). The tail of every training record (:func:`training_record`), also
    of an export made without training (the tokenizer's ``--fit-only``)."""
    return {
        "command": run.command,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(0) if run.cuda else platform.processor() or "cpu",
        "versions": {"torch": torch.__version__, **{name: package_version(name) for name in versions}},
    }


def export_and_test(record: dict[str, Any], save: Callable[[dict[str, Any]], Any],
                    reload: Callable[[], Any] | None = None,
                    test: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Export → reload → test → record: ``save(record)`` writes the export with its record; with ``reload`` and
    ``test``, the export is read back as users load it (``reload()``), ``test(reloaded)``'s fields join the
    record, and ``save(record)`` writes the export again with them. Returns the record."""
    save(record)
    if reload is not None and test is not None:
        record.update(test(reload()))
        save(record)
    return record
