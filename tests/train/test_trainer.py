"""Trainer pieces: LR schedules, EMA, CSV log, atomic checkpoints, stopping rules."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lyra.errors import ConfigError
from lyra.train import EMA, IndexedBatches, MetricsLog, TrainConfig, Trainer, list_checkpoints, lr_multiplier
from lyra.train import checkpoint as ckpt_mod


def test_warmup_constant_and_cosine():
    f = lr_multiplier("constant", 100, 1000)
    assert f(0) == pytest.approx(1 / 101) and f(49) == pytest.approx(50 / 101)
    assert f(99) == pytest.approx(100 / 101) and f(100) == 1.0 and f(5000) == 1.0
    c = lr_multiplier("cosine", 10, 110, min_ratio=0.1)
    assert c(10) == pytest.approx(1.0)
    assert c(60) == pytest.approx(0.1 + 0.9 * 0.5)  # half way: cos(π/2) = 0
    assert c(110) == pytest.approx(0.1) and c(500) == pytest.approx(0.1)
    with pytest.raises(ConfigError):
        lr_multiplier("linear", 0, 10)


def test_ema_closed_form():
    m = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(0.0)
    ema = EMA(m, decay=0.5)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m)  # decay_0 = min(0.5, 1/10) = 0.1 → 0.9
    assert float(ema.shadow["weight"]) == pytest.approx(0.9)
    for _ in range(20):
        ema.update(m)
    assert float(ema.shadow["weight"]) == pytest.approx(1.0, abs=1e-6)
    m2 = nn.Linear(1, 1, bias=False)
    ema.copy_to(m2)
    assert float(m2.weight.detach()) == pytest.approx(1.0, abs=1e-6)


def test_metrics_log_truncates_on_resume(tmp_path):
    log = MetricsLog(tmp_path / "m.csv")
    for s in (10, 20, 30):
        log.write({"step": s, "loss": 1.0 / s, "lr": math.nan})
    log2 = MetricsLog(tmp_path / "m.csv")
    log2.truncate_after(20)
    log2.write({"step": 30, "loss": 0.5, "lr": 1e-4})
    rows = log2.read()
    assert [r["step"] for r in rows] == ["10", "20", "30"] and rows[-1]["loss"] == "0.5"
    assert rows[0]["lr"] == "nan"


def _linear_run(out, **kw):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)

    def make(i):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(4, 3, generator=g)
        return [x, x.sum(1, keepdim=True)]

    def loss_fn(m, batch):
        x, y = batch
        return (m(x) - y).square().mean(), {}

    base = dict(out_dir=str(out), steps=10, lr=1e-2, warmup_steps=0, checkpoint_every=4, log_every=1,
                progress=False, cpu=True)
    base.update(kw)
    return Trainer(model, loss_fn, IndexedBatches(make), TrainConfig(**base))


def test_training_reduces_the_loss_and_keeps_checkpoints(tmp_path):
    t = _linear_run(tmp_path, keep_checkpoints=2, steps=30, lr=0.1)
    r = t.fit()
    assert r.reason == "done" and r.step == 30
    loss = [float(r["loss"]) for r in MetricsLog(tmp_path / "metrics.csv").read()]
    assert sum(loss[-5:]) < 0.1 * sum(loss[:5])
    assert [s for s, _ in list_checkpoints(tmp_path / "checkpoints")] == [28, 30]


def test_failed_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    t = _linear_run(tmp_path, steps=4)
    t.fit()
    t2 = _linear_run(tmp_path, steps=8, resume="auto")

    def boom(*a, **k):
        raise OSError("disk full")

    real = ckpt_mod.save_checkpoint
    monkeypatch.setattr("lyra.train.trainer.save_checkpoint", lambda acc, *a, **k: boom())
    with pytest.raises(OSError):
        t2.fit()
    monkeypatch.setattr("lyra.train.trainer.save_checkpoint", real)
    assert [s for s, _ in list_checkpoints(tmp_path / "checkpoints")] == [4]


def test_interrupted_save_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    t = _linear_run(tmp_path, steps=4, checkpoint_every=100)
    t.fit()
    acc = t.accelerator

    def broken_save_state(path):
        (ckpt_mod.Path(path) / "model.safetensors").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(acc, "save_state", broken_save_state)
    with pytest.raises(KeyboardInterrupt):
        ckpt_mod.save_checkpoint(acc, tmp_path / "checkpoints", 5, {"step": 5})
    assert [s for s, _ in list_checkpoints(tmp_path / "checkpoints")] == [4]


def test_fresh_run_refuses_existing_checkpoints(tmp_path):
    _linear_run(tmp_path, steps=2).fit()
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        _linear_run(tmp_path, steps=4, resume=None).fit()
    with pytest.raises(ConfigError, match="not a checkpoint folder"):
        _linear_run(tmp_path / "other", steps=4, resume=str(tmp_path / "nothing")).fit()


def test_time_limit_stops_and_checkpoints(tmp_path):
    t = _linear_run(tmp_path, steps=10_000, max_minutes=0.001)  # margin > budget: stops at once
    r = t.fit()
    assert r.reason == "time" and r.step == 0
    assert [s for s, _ in list_checkpoints(tmp_path / "checkpoints")] == [0]


def test_time_budget_sets_the_step_count(tmp_path):
    t = _linear_run(tmp_path, steps=10**6, time_budget_minutes=0.02, budget_probe_steps=10, checkpoint_every=10**6)
    r = t.fit()
    assert r.reason == "done" and 10 < t.total_steps < 10**6 and r.step == t.total_steps
    # A resumed run keeps the decided count.
    t2 = _linear_run(tmp_path, steps=10**6, time_budget_minutes=0.02, budget_probe_steps=10)
    t2.fit()
    assert t2.total_steps == t.total_steps and t2.step == t.total_steps
