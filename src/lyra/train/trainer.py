"""The training loop every model here shares, on ``accelerate``.

Generic: a model, a loss function ``loss_fn(model, batch) -> (loss, {name: value})``, a stateful batch
source (:mod:`lyra.train.data`) and a :class:`TrainConfig`. What it does:

* AdamW with linear warm-up then constant (Lyra: lr 1e-4, betas (0.9, 0.999), weight decay 0.01,
  100 warm-up steps) or cosine decay; gradient clipping; gradient accumulation;
* bf16 autocast on CUDA (``mixed_precision="auto"``), fp32 on CPU;
* DDP / FSDP / DeepSpeed purely through the ``accelerate`` config (``accelerate launch ...``);
* atomic checkpoints every N steps and at the end (also when stopped by ``max_minutes`` or SIGTERM),
  exact resume (model, optimiser, scheduler, RNG states, data position, step, EMA);
* a tqdm progress bar and a CSV metrics log ``<out_dir>/metrics.csv``; optional EMA of the weights.

Steps count optimiser updates; one step reads ``grad_accum`` batches from the source.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lyra.errors import ConfigError
from lyra.train.checkpoint import list_checkpoints, resume_latest, save_checkpoint
from lyra.train.data import StatefulBatches
from lyra.train.ema import EMA
from lyra.train.metrics_log import MetricsLog
from lyra.train.schedule import lr_multiplier

LossFn = Callable[[nn.Module, Any], tuple[Tensor, dict[str, Any]]]


@dataclass
class TrainConfig:
    """Settings of one training run (saved in every checkpoint's ``trainer_state.json``)."""

    out_dir: str
    steps: int
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01
    warmup_steps: int = 100
    schedule: str = "constant"  # "constant" | "cosine"
    min_lr_ratio: float = 0.0  # cosine: final lr / lr
    grad_clip: float | None = 1.0
    grad_accum: int = 1
    mixed_precision: str = "auto"  # "auto" (bf16 on CUDA, none on CPU) | "no" | "bf16" | "fp16"
    cpu: bool = False  # force the CPU even where CUDA is present
    seed: int = 0
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    log_every: int = 10
    ema_decay: float | None = None
    max_minutes: float | None = None  # stop (and checkpoint) before this much wall time has passed
    # Fit the whole run into this many minutes of training: after ``budget_probe_steps`` steps of the
    # first chunk, ``steps`` is set from the measured speed (and kept by every resumed chunk).
    time_budget_minutes: float | None = None
    budget_probe_steps: int = 50
    resume: str | None = "auto"  # "auto": latest checkpoint if any | a checkpoint folder | None: fresh
    progress: bool = True
    print_every: int | None = None  # also print a plain metrics line every N steps (for logs without a tty)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form, recorded with the checkpoints

    def validate(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"steps must be >= 0, got {self.steps}")
        if self.grad_accum < 1:
            raise ConfigError(f"grad_accum must be >= 1, got {self.grad_accum}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ConfigError("checkpoint_every and log_every must be >= 1")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ConfigError(f"mixed_precision must be auto, no, bf16 or fp16, got {self.mixed_precision!r}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError("max_minutes must be positive")
        if self.time_budget_minutes is not None and self.time_budget_minutes <= 0:
            raise ConfigError("time_budget_minutes must be positive")
        if self.budget_probe_steps < 2:
            raise ConfigError("budget_probe_steps must be >= 2")


@dataclass
class TrainResult:
    step: int  # optimiser steps done in total (over all resumed chunks)
    reason: str  # "done" | "until" | "time" | "signal"
    metrics: dict[str, float]  # the last logged metrics
    checkpoint: Path | None  # the last checkpoint written
    elapsed_s: float  # wall time of all chunks together


class Trainer:
    """Train ``model`` on ``loss_fn`` over batches from ``data`` (see module docstring).

    Args:
        model: the module to train (its trainable parameters are optimised).
        loss_fn: ``loss_fn(model, batch) -> (loss, metrics)``; ``model`` is the prepared (possibly
            DDP-wrapped) module, so call it through ``forward``. Metrics are scalars (tensors or floats).
        data: a stateful endless batch source (:class:`~lyra.train.data.ResumableLoader`,
            :class:`~lyra.train.data.IndexedBatches` or anything with ``state_dict``/``load_state_dict``).
        config: :class:`TrainConfig`.
        eval_fn: optional ``eval_fn(unwrapped_model, step) -> {name: value}`` run every ``eval_every``
            steps on the main process; rows go to ``<out_dir>/eval.csv``.
        eval_every: steps between evaluations (``None``: only at the end).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: StatefulBatches, config: TrainConfig,
                 eval_fn: Callable[[nn.Module, int], dict[str, Any]] | None = None,
                 eval_every: int | None = None) -> None:
        config.validate()
        if not isinstance(data, StatefulBatches):
            raise ConfigError("data must be iterable and have state_dict()/load_state_dict() "
                              "(wrap it in lyra.train.ResumableLoader or IndexedBatches)")
        self.model = model
        self.loss_fn = loss_fn
        self.data = data
        self.config = config
        self.eval_fn = eval_fn
        self.eval_every = eval_every
        self.out_dir = Path(config.out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.accelerator: Any = None
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.ema: EMA | None = None
        self.step = 0
        self.total_steps = config.steps  # may be set by the time budget
        self.budget_decided = False
        self._stop_signal = False
        self._resumed_from: Path | None = None

    # ------------------------------------------------------------------ setup
    def _make_accelerator(self) -> Any:
        from accelerate import Accelerator
        from accelerate.utils import GradientAccumulationPlugin

        cfg = self.config
        mp = cfg.mixed_precision
        if mp == "auto":
            mp = "bf16" if (torch.cuda.is_available() and not cfg.cpu) else "no"
        plugin = GradientAccumulationPlugin(num_steps=cfg.grad_accum, sync_with_dataloader=False)
        return Accelerator(mixed_precision=mp, cpu=cfg.cpu, gradient_accumulation_plugin=plugin,
                           step_scheduler_with_optimizer=False)

    @property
    def unwrapped_model(self) -> nn.Module:
        """The bare model: without DDP/FSDP wrappers and without ``torch.compile``'s wrapper."""
        if self.accelerator is None:
            return getattr(self.model, "_orig_mod", self.model)
        return self.accelerator.unwrap_model(self.model, keep_torch_compile=False)

    def _setup(self) -> dict[str, Any] | None:
        from accelerate.utils import set_seed

        cfg = self.config
        acc = self.accelerator = self._make_accelerator()
        set_seed(cfg.seed)
        if hasattr(self.data, "set_shard"):
            self.data.set_shard(acc.process_index, acc.num_processes)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ConfigError("the model has no trainable parameters")
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: lr_multiplier(cfg.schedule, cfg.warmup_steps, self.total_steps, cfg.min_lr_ratio)(step),
        )
        self.model, self.optimizer, self.scheduler = acc.prepare(self.model, optimizer, scheduler)
        if cfg.ema_decay is not None:
            self.ema = EMA(self.unwrapped_model, cfg.ema_decay)  # saved as safetensors by save_checkpoint

        candidates = self._resume_candidates()
        if not candidates:
            if acc.is_main_process:
                print(f"no checkpoint to resume: training from step 0 into {self.out_dir}", flush=True)
            return None
        say = (lambda msg: print(msg, flush=True)) if acc.is_main_process else (lambda msg: None)
        resume_from, state = resume_latest(acc, candidates, self.ema, say)
        self._resumed_from = resume_from
        self.step = int(state["step"])
        if acc.is_main_process:
            print(f"resumed {resume_from} at step {self.step}", flush=True)
        if cfg.time_budget_minutes is not None and state.get("budget_steps"):
            self.total_steps = int(state["budget_steps"])
            self.budget_decided = True
        self.data.load_state_dict(state["data"])
        return state

    def _resume_candidates(self) -> list[Path]:
        """Checkpoints to resume from, oldest first (the newest intact one is loaded); ``[]``: start afresh."""
        cfg = self.config
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ConfigError(f"{self.out_dir}: is a file; --out must name a folder (new or a run to resume)")
        existing = [p for _, p in list_checkpoints(self.ckpt_dir)]
        if cfg.resume is None:
            if existing:
                raise ConfigError(
                    f"{self.ckpt_dir} already holds checkpoints; resume them (--resume) or choose another --out"
                )
            return []
        if cfg.resume == "auto":
            return existing
        path = Path(cfg.resume)
        if (path / "trainer_state.json").is_file() or (path / "manifest.json").is_file():
            return [path]  # one named checkpoint: exactly that one
        found = [p for _, p in list_checkpoints(path)] or [p for _, p in list_checkpoints(path / "checkpoints")]
        if not found:
            raise ConfigError(f"{path}: not a checkpoint folder (no manifest.json) and holds none")
        return found

    # ------------------------------------------------------------------ the loop
    def fit(self, until: int | None = None) -> TrainResult:
        """Train until ``config.steps`` (or the time budget / a SIGTERM); checkpoint at the end.

        ``until`` stops this call earlier, at that step (reason ``"until"``), with a checkpoint: a run
        cut into chunks this way continues exactly like an uncut one (the LR schedule still spans
        ``config.steps``).
        """
        cfg = self.config
        t_start = time.perf_counter()
        if self.accelerator is None:
            prev = self._setup()
        else:  # a second fit() call continues in the same process
            prev = None
        acc = self.accelerator
        elapsed_before = float(prev.get("elapsed_s", 0.0)) if prev else 0.0
        if acc.is_main_process:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        log = MetricsLog(self.out_dir / "metrics.csv")
        eval_log = MetricsLog(self.out_dir / "eval.csv")
        if acc.is_main_process:
            log.truncate_after(self.step)
            eval_log.truncate_after(self.step)

        deadline = t_start + cfg.max_minutes * 60.0 if cfg.max_minutes else math.inf
        step_time = ckpt_time = 0.0
        last_ckpt: Path | None = self._resumed_from if prev else None
        last_ckpt_step = self.step if prev else -1
        metrics: dict[str, float] = dict(prev.get("metrics", {})) if prev else {}
        sums: dict[str, Tensor] = {}
        count = 0
        reason = "done"
        data_iter: Iterator[Any] = iter(self.data)
        bar = self._progress_bar()
        self.model.train()

        probe_start: tuple[int, float] | None = None
        with self._sigterm_handler():
            while self.step < (self.total_steps if until is None else min(until, self.total_steps)):
                margin = 1.5 * step_time + 1.5 * ckpt_time + 5.0
                if self._agree(self._stop_signal):
                    reason = "signal"
                    break
                if self._agree(time.perf_counter() + margin > deadline):
                    reason = "time"
                    break
                t0 = time.perf_counter()
                grad_norm = self._train_step(data_iter, sums)
                count += 1
                self.step += 1
                if self.ema is not None:
                    self.ema.update(self.unwrapped_model)
                dt = time.perf_counter() - t0
                step_time = dt if step_time == 0.0 else 0.9 * step_time + 0.1 * dt
                if cfg.time_budget_minutes is not None and not self.budget_decided:
                    probe_start = self._decide_budget(probe_start, elapsed_before + time.perf_counter() - t_start)
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    metrics = self._reduce(sums, count)
                    metrics.update(lr=self.scheduler.get_last_lr()[0], s_per_step=step_time)
                    if grad_norm is not None:
                        metrics["grad_norm"] = float(grad_norm)
                    sums, count = {}, 0
                    metrics["total_steps"] = float(self.total_steps)
                    if acc.is_main_process:
                        log.write({"step": self.step, **metrics,
                                   "time_s": round(elapsed_before + time.perf_counter() - t_start, 2)})
                        if bar is not None:
                            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if k in ("loss", "lr")})
                if bar is not None:
                    bar.update(1)
                if cfg.print_every and self.step % cfg.print_every == 0 and acc.is_main_process and metrics:
                    shown = " ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k != "total_steps")
                    print(f"step {self.step}/{self.total_steps} {shown}", flush=True)
                if self.eval_fn is not None and self.eval_every and self.step % self.eval_every == 0:
                    self._evaluate(eval_log)
                if self.step % cfg.checkpoint_every == 0:
                    t1 = time.perf_counter()
                    last_ckpt = self._save(metrics, elapsed_before + time.perf_counter() - t_start)
                    last_ckpt_step = self.step
                    ckpt_time = time.perf_counter() - t1

        if reason == "done" and self.step < self.total_steps:
            reason = "until"
        if bar is not None:
            bar.close()
        if last_ckpt_step != self.step:
            last_ckpt = self._save(metrics, elapsed_before + time.perf_counter() - t_start)
        if self.eval_fn is not None and reason == "done" and not (self.eval_every and self.step % self.eval_every == 0):
            self._evaluate(eval_log)
        return TrainResult(step=self.step, reason=reason, metrics=metrics, checkpoint=last_ckpt,
                           elapsed_s=elapsed_before + time.perf_counter() - t_start)

    def _train_step(self, data_iter: Iterator[Any], sums: dict[str, Tensor]) -> Tensor | None:
        from accelerate.utils import send_to_device

        acc, cfg = self.accelerator, self.config
        grad_norm = None
        for _ in range(cfg.grad_accum):
            batch = send_to_device(next(data_iter), acc.device)
            with acc.accumulate(self.model):
                with acc.autocast():
                    loss, parts = self.loss_fn(self.model, batch)
                acc.backward(loss)
                if acc.sync_gradients:
                    if cfg.grad_clip is not None:
                        grad_norm = acc.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
            for k, v in {"loss": loss, **parts}.items():
                v = v.detach().float() if isinstance(v, Tensor) else torch.tensor(float(v))
                sums[k] = sums.get(k, 0.0) + v.to(acc.device) / cfg.grad_accum
        if grad_norm is not None and isinstance(grad_norm, Tensor):
            grad_norm = grad_norm.detach()
        return grad_norm

    # ------------------------------------------------------------------ helpers
    def _reduce(self, sums: dict[str, Tensor], count: int) -> dict[str, float]:
        acc = self.accelerator
        out = {}
        for k in sorted(sums):
            v = sums[k] / max(count, 1)
            if acc.num_processes > 1:
                v = acc.reduce(v.reshape(1), reduction="mean")
            out[k] = float(v)
        return out

    def _decide_budget(self, probe_start: tuple[int, float] | None, elapsed: float) -> tuple[int, float] | None:
        """Measure the speed over steps [probe/5, probe] and fit ``total_steps`` into the time budget."""
        cfg = self.config
        first = max(1, cfg.budget_probe_steps // 5)  # skip start-up (autotuning, caches)
        if self.step == first:
            return (self.step, elapsed)
        if probe_start is None or self.step < cfg.budget_probe_steps:
            return probe_start
        s_per_step = (elapsed - probe_start[1]) / (self.step - probe_start[0])
        remaining = cfg.time_budget_minutes * 60.0 - elapsed  # type: ignore[operator]
        steps = self.step + int(0.97 * remaining / max(s_per_step, 1e-9))  # 3 %: checkpoints, logging
        steps = max(self.step, min(steps, cfg.steps))
        if self.accelerator.num_processes > 1:  # every process must train the same number of steps
            from accelerate.utils import broadcast_object_list

            steps = broadcast_object_list([steps], from_process=0)[0]
        self.total_steps = steps
        self.budget_decided = True
        if self.accelerator.is_main_process:
            print(f"time budget {cfg.time_budget_minutes} min at {s_per_step:.3f} s/step: "
                  f"training for {self.total_steps} steps", flush=True)
        return probe_start

    def _agree(self, flag: bool) -> bool:
        """True on every process if it is true on any (stop decisions must be collective)."""
        acc = self.accelerator
        if acc.num_processes == 1:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device=acc.device)
        return bool(acc.reduce(t, reduction="sum").item() > 0)

    def _save(self, metrics: dict[str, float], elapsed: float) -> Path:
        state = {
            "step": self.step,
            "data": self.data.state_dict(),
            "elapsed_s": round(elapsed, 3),
            "metrics": metrics,
            "config": dataclasses.asdict(self.config),
            "budget_steps": self.total_steps if self.budget_decided else None,
                    }
        return save_checkpoint(self.accelerator, self.ckpt_dir, self.step, state, keep=self.config.keep_checkpoints,
                               ema=self.ema)

    def _evaluate(self, eval_log: MetricsLog) -> None:
        acc = self.accelerator
        if acc.is_main_process:
            was_training = self.model.training
            self.model.eval()
            with torch.no_grad():
                result = self.eval_fn(self.unwrapped_model, self.step)  # type: ignore[misc]
            self.model.train(was_training)
            if result:
                eval_log.write({"step": self.step, **{k: float(v) for k, v in result.items()}})
        acc.wait_for_everyone()

    def _progress_bar(self) -> Any:
        if not (self.config.progress and self.accelerator.is_main_process):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.config.steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True,
                    mininterval=2.0)

    @contextlib.contextmanager
    def _sigterm_handler(self) -> Iterator[None]:
        """On SIGTERM: finish the current step, checkpoint, return (main thread only)."""
        try:
            previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._stop_signal = True
