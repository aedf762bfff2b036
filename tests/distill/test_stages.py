"""Progressive stages: validation, step → stage, JSON loading, end-weighted target frames, view sampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lyra.distill.stages import (
    LYRA_STAGES,
    Stage,
    StagePlan,
    frame_weights,
    load_stages,
    sample_frames,
    sample_views,
)
from lyra.errors import ConfigError, InputFileError
from lyra.train.recipes.student import ablate

REPO = Path(__file__).resolve().parents[2]


def test_stage_validation():
    Stage("ok", 10, 176, 320, 17, views=(1, 6), prune_ratio=0.8)
    for kwargs, match in (({"frames": 12}, "1 \\+ 8k"), ({"losses": ("mse", "lpips")}, "subset"),
                          ({"prune_ratio": 1.0}, "prune_ratio"), ({"height": 10}, "height and width"),
                          ({"views": (3, 2)}, "views"), ({"target_frames": 0}, "target_frames"),
                          ({"end_weight": -1.0}, "end_weight"), ({"losses": ()}, "non-empty")):
        with pytest.raises(ConfigError, match=match):
            Stage("bad", 10, **kwargs)
    with pytest.raises(ConfigError, match="fractional"):
        Stage("bad", 1.5)
    with pytest.raises(ConfigError, match="unique"):
        StagePlan([Stage("a", 1), Stage("a", 2)])
    with pytest.raises(ConfigError, match="not decrease"):
        StagePlan([Stage("a", 5), Stage("b", 4)]).ends(10)
    short = StagePlan([Stage("a", 0.5), Stage("b", 0.6), Stage("c", 1.0)])  # 1 step: a and b end together
    assert short.ends(1) == [1, 1, 1] and short.at(0, 1).name == "a" and short.at(5, 10).name == "b"
    with pytest.raises(ConfigError, match="unknown stage keys"):
        Stage.from_dict({"name": "a", "until": 1, "resolution": 3})


def test_step_to_stage_absolute_and_fractional():
    plan = StagePlan([Stage("a", 3), Stage("b", 0.5), Stage("c", 1.0)])
    # 20 steps: ends 3, 10, 20
    assert plan.ends(20) == [3, 10, 20]
    assert [plan.at(s, 20).name for s in (0, 2, 3, 9, 10, 19, 25)] == ["a", "a", "b", "b", "c", "c", "c"]
    assert Stage("f", 0.25).end_step(10) == 3  # ceil(2.5)


def test_lyra_schedule_and_json_round_trip(tmp_path):
    assert LYRA_STAGES.ends(0) == [10_000, 12_500, 15_000, 17_500, 75_000, 82_000, 83_000]
    last = LYRA_STAGES.stages[-1]
    assert last.prune_ratio == 0.8 and "opacity" in last.losses and last.view_range == (1, 6)
    path = tmp_path / "stages.json"
    path.write_text(json.dumps(LYRA_STAGES.to_dict()))
    assert load_stages(path).stages == LYRA_STAGES.stages
    path.write_text(json.dumps([{"name": "x", "until": 0.5, "views": [2, 3]}]))  # a bare list works too
    assert load_stages(path).stages[0].view_range == (2, 3)
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_stages(path)
    with pytest.raises(InputFileError):
        load_stages(tmp_path / "missing.json")


def test_shipped_tiny_stage_list_follows_lyra():
    plan = load_stages(REPO / "configs" / "student_tiny.json")
    ends = plan.ends(1000)
    assert ends[-1] == 1000 and ends == sorted(ends)
    for s in plan.stages:  # opacity loss exactly in the pruning stages
        assert ("opacity" in s.losses) == (s.prune_ratio is not None)
    assert plan.stages[-1].prune_ratio == 0.8
    multi = [s for s in plan.stages if s.view_range != (6, 6)]
    assert multi and all(s.view_range == (1, 6) and s.end_weight > 0 for s in multi)
    assert all(s.view_range == (6, 6) for s in plan.stages[:plan.stages.index(multi[0])])


def test_frame_weights_closed_form():
    w = frame_weights(5, 2.0)  # ∝ 1 + 2·(0, .25, .5, .75, 1) = (1, 1.5, 2, 2.5, 3)
    assert torch.allclose(w, torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0], dtype=torch.float64) / 10)
    assert torch.allclose(frame_weights(4, 0.0), torch.full((4,), 0.25, dtype=torch.float64))
    assert frame_weights(1, 5.0).tolist() == [1.0]


def test_sample_frames_follow_the_weights():
    stage = Stage("m", 1.0, target_frames=1, end_weight=2.0)
    g = torch.Generator().manual_seed(0)
    draws = sample_frames(stage, 5, 20000, g)[:, 0]
    freq = torch.bincount(draws, minlength=5).double() / len(draws)
    assert torch.allclose(freq, frame_weights(5, 2.0), atol=0.012)  # ~4 standard errors
    rows = sample_frames(Stage("k", 1.0, target_frames=4, end_weight=2.0), 9, 50, g)
    assert rows.shape == (50, 4)
    assert all(len(set(r.tolist())) == 4 and r.tolist() == sorted(r.tolist()) for r in rows)
    assert sample_frames(Stage("all", 1.0, target_frames=20), 9, 2, g).tolist() == [list(range(9))] * 2
    a = sample_frames(stage, 9, 3, torch.Generator().manual_seed(7))
    assert torch.equal(a, sample_frames(stage, 9, 3, torch.Generator().manual_seed(7)))


def test_sample_views():
    g = torch.Generator().manual_seed(1)
    assert sample_views(Stage("all", 1.0), 6, g).tolist() == list(range(6))
    assert sample_views(Stage("all", 1.0), 2, g).tolist() == [0, 1]  # clipped to what the data has
    counts = set()
    for _ in range(200):
        v = sample_views(Stage("multi", 1.0, views=(1, 6)), 6, g)
        counts.add(len(v))
        assert v.tolist() == sorted(set(v.tolist())) and 0 <= int(v.min()) and int(v.max()) < 6
    assert counts == {1, 2, 3, 4, 5, 6}


def test_ablations_remove_terms_and_pruning():
    plan = StagePlan([Stage("a", 0.5), Stage("p", 1.0, losses=("mse", "depth", "opacity"), prune_ratio=0.8)])
    nd = ablate(plan, no_depth=True)
    assert all("depth" not in s.losses for s in nd.stages) and nd.stages[1].prune_ratio == 0.8
    npr = ablate(plan, no_prune=True)
    assert all(s.prune_ratio is None and "opacity" not in s.losses for s in npr.stages)
    assert npr.stages[0].losses == plan.stages[0].losses
