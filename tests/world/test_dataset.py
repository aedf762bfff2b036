"""Seed splits and the torch Dataset."""

import pytest
import torch
from torch.utils.data import DataLoader

from lyra.errors import ConfigError
from lyra.world import SPLITS, WorldDataset, collate_examples, make_example, render_samples, split_seeds


def test_splits_are_fixed_and_disjoint():
    assert SPLITS["test"] == (0, 1000) and SPLITS["val"] == (1000, 2000) and SPLITS["train"][0] == 1_000_000
    ranges = [split_seeds(s) for s in ("test", "val", "train")]
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = ranges[i], ranges[j]
            assert a.stop <= b.start or b.stop <= a.start
    train = WorldDataset("train", "micro")
    assert len(train) == 2**31 - 1 - 1_000_000
    assert train.seed(0) == 1_000_000 and train.seed(len(train) - 1) == 2**31 - 2
    test_seeds = set(split_seeds("test"))
    assert not test_seeds & {train.seed(i) for i in range(0, len(train), len(train) // 997)}
    assert [WorldDataset("test", size=3).seed(i) for i in range(3)] == [0, 1, 2]
    assert WorldDataset("val", size=5).seed(4) == 1004


def test_bad_split_and_size():
    with pytest.raises(ConfigError):
        WorldDataset("holdout")
    with pytest.raises(ConfigError):
        WorldDataset("test", size=1001)
    with pytest.raises(ConfigError):
        WorldDataset("val", preset="huge")
    with pytest.raises(IndexError):
        WorldDataset("val", size=2)[2]


def test_item_is_the_seed_example_and_collates():
    ds = WorldDataset("val", preset="micro", size=2)
    ex = ds[1]
    ref = make_example(1001, "micro")
    assert ex.seed == 1001 and torch.equal(ex.videos, ref.videos) and torch.equal(ex.depths, ref.depths)
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate_examples)))
    assert batch["videos"].shape == (2, 6, 9, 3, 48, 88)
    assert batch["cameras"].shape == (2, 6, 9)
    assert batch["seed"].tolist() == [1000, 1001]
    assert torch.equal(batch["videos"][1], ref.videos)
    assert torch.equal(batch["cameras"].c2w[1], ref.cameras.c2w)


def test_dynamic_dataset_has_times():
    ex = WorldDataset("val", preset="micro", dynamic=True, size=1)[0]
    assert ex.times is not None and ex.times.shape == (9,)
    # frame f of every trajectory shows the world at t_f = f / (T - 1)
    torch.testing.assert_close(ex.times.float(), torch.arange(9, dtype=torch.float32) / 8)
    batch = collate_examples([ex, WorldDataset("val", preset="micro", dynamic=True, size=2)[1]])
    assert batch["times"].shape == (2, 9)
    assert torch.equal(batch["times"][0], ex.times) and torch.equal(batch["times"][1], ex.times)


def test_unrendered_samples_render_to_the_same_examples():
    ds = WorldDataset("val", preset="micro", size=3, render=False)
    samples = next(iter(DataLoader(ds, batch_size=3, collate_fn=list)))
    assert [s.scene.seed for s in samples] == [1000, 1001, 1002]
    batched = render_samples(samples)  # one batched call over three worlds
    for ex, seed in zip(batched, (1000, 1001, 1002), strict=True):
        ref = make_example(seed, "micro")
        assert torch.equal(ex.depths, ref.depths)
        assert torch.allclose(ex.videos, ref.videos, atol=1e-5)
