"""Exact resume: N steps, stop, resume, N more steps == 2N steps straight (bitwise, CPU)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from lyra.train import IndexedBatches, ResumableLoader, TrainConfig, Trainer, list_checkpoints


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 2))


def _dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 4, generator=g)
    return TensorDataset(x, torch.stack([x.sum(1), x[:, 0] * x[:, 1]], 1))


def _loss(model: nn.Module, batch: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
    x, y = batch
    # torch.rand draws from the global RNG too: its state must be restored on resume.
    noise = 0.01 * torch.rand_like(x)
    err = model(x + noise) - y
    return err.square().mean(), {"mae": err.abs().mean()}


def _config(out, steps, **kw) -> TrainConfig:
    base = dict(out_dir=str(out), steps=steps, lr=3e-3, warmup_steps=3, schedule="cosine", grad_clip=0.5,
                grad_accum=2, checkpoint_every=5, log_every=2, ema_decay=0.9, seed=7, progress=False, cpu=True)
    base.update(kw)
    return TrainConfig(**base)


def _run(out, steps, data=None, until=None, **kw):
    model = _model()
    data = data if data is not None else ResumableLoader(_dataset(), batch_size=6, seed=3)  # 6 batches/epoch
    trainer = Trainer(model, _loss, data, _config(out, steps, **kw))
    result = trainer.fit(until=until)
    return trainer, result


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_is_exact(tmp_path):
    n = 8  # 16 batches per run half: crosses epoch boundaries (6 batches per epoch)
    straight, r_straight = _run(tmp_path / "straight", 2 * n)
    first, r_first = _run(tmp_path / "resumed", 2 * n, until=n)
    assert r_first.step == n and r_first.reason == "until"
    second, r_second = _run(tmp_path / "resumed", 2 * n)  # resume="auto" picks step n
    assert r_second.step == 2 * n
    assert _same(straight.unwrapped_model.state_dict(), second.unwrapped_model.state_dict())
    assert _same(straight.ema.shadow, second.ema.shadow)
    assert straight.data.state_dict() == second.data.state_dict()
    # Optimiser moments and the LR schedule continue exactly as well.
    sa, sb = straight.optimizer.state_dict(), second.optimizer.state_dict()
    for k in sa["state"]:
        assert torch.equal(sa["state"][k]["exp_avg_sq"], sb["state"][k]["exp_avg_sq"])
    assert straight.scheduler.get_last_lr() == second.scheduler.get_last_lr()
    # The metrics log of the resumed run equals the straight one row for row (except wall times).
    def rows(p):
        return [{k: v for k, v in r.items() if k not in ("time_s", "s_per_step")}
                for r in __import__("csv").DictReader(open(p / "metrics.csv"))]
    assert rows(tmp_path / "straight") == rows(tmp_path / "resumed")
    # Checkpoints: every 5 steps and at the end, the two newest kept.
    assert [s for s, _ in list_checkpoints(tmp_path / "resumed" / "checkpoints")] == [15, 16]


def test_resume_indexed_batches(tmp_path):
    def make(i: int):
        g = torch.Generator().manual_seed(100 + i)
        x = torch.randn(5, 4, generator=g)
        return [x, torch.stack([x.sum(1), x[:, 0]], 1)]

    straight, _ = _run(tmp_path / "a", 6, data=IndexedBatches(make), ema_decay=None, grad_accum=1)
    _run(tmp_path / "b", 6, until=3, data=IndexedBatches(make), ema_decay=None, grad_accum=1)
    resumed, _ = _run(tmp_path / "b", 6, data=IndexedBatches(make), ema_decay=None, grad_accum=1)
    assert _same(straight.unwrapped_model.state_dict(), resumed.unwrapped_model.state_dict())
    assert resumed.data.state_dict() == {"counter": 6}
