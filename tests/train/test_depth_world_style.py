"""The depth recipe's ``--world-style``: photo-style training worlds on request, classic by default."""

import torch

from lyra.train.recipes import depth as train_depth


def test_world_style_reaches_the_training_worlds(monkeypatch):
    calls = []

    def fake(seed, preset, device, split_frames=True, style="classic"):
        calls.append(style)
        return torch.rand(3, 3, 48, 88), torch.rand(3, 48, 88) + 1

    monkeypatch.setattr(train_depth, "world_frames", fake)
    train_depth.DepthFrames(batch_size=2, preset="micro", pool_worlds=2, style="photo")(0)
    photo, calls[:] = list(calls), []
    train_depth.DepthFrames(batch_size=2, preset="micro", pool_worlds=2)(0)
    assert photo and set(photo) == {"photo"} and calls and set(calls) == {"classic"}
    args = train_depth.build_parser().parse_args(["--out", "x", "--world-style", "photo"])
    assert args.world_style == "photo"
    assert train_depth.build_parser().parse_args(["--out", "x"]).world_style == "classic"
