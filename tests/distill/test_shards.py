"""SDG shard format: exact round trips, byte determinism, header validation, manifest, ShardDataset."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lyra.errors import ConfigError, FormatError
from lyra.shards import (
    FORMAT_VERSION,
    HEADER_KEY,
    MANIFEST_NAME,
    SdgSample,
    ShardDataset,
    check_settings,
    read_manifest,
    read_shard,
    read_shard_header,
    sample_cameras,
    scan_manifest,
    shard_name,
    write_manifest,
    write_shard,
)

V, T, H, W = 6, 9, 8, 16
SETTINGS = {"preset": "tiny", "steps": 2, "seed": 0, "weights": {"teacher": "ab" * 32}}


def make_sample(i: int, gt: bool = False, channels: int = 16, plucker: bool = False) -> SdgSample:
    g = torch.Generator().manual_seed(i)
    return SdgSample(
        sample_id=f"world-test:{i}:world-gt", world_seed=i, noise_seed=1000 + i,
        latents=torch.randn(V, channels, 2, 1, 2, generator=g) * 3,
        plucker=torch.randn(V, 2 * channels, 2, 1, 2, generator=g) if plucker else None,
        rgb=torch.randint(0, 256, (V, T, H, W, 3), generator=g, dtype=torch.uint8),
        K=torch.randn(V, T, 3, 3, generator=g), c2w=torch.randn(V, T, 4, 4, generator=g),
        depth=torch.rand(V, T, H, W, generator=g) * 50 + 0.1,
        image=torch.randint(0, 256, (H, W, 3), generator=g, dtype=torch.uint8),
        input_depth=torch.where(torch.rand(H, W, generator=g) > 0.8, torch.tensor(float("inf")),
                                torch.rand(H, W, generator=g) + 1),
        gt_depth=(torch.rand(V, T, H, W, generator=g) * 10) if gt else None)


def test_roundtrip_exact_in_stored_dtypes(tmp_path):
    samples = [make_sample(i, gt=True) for i in range(3)]
    path = write_shard(tmp_path / shard_name(4), 4, samples, SETTINGS)
    header, tensors = read_shard(path)
    assert header.shard_index == 4 and header.format_version == FORMAT_VERSION
    assert header.settings == SETTINGS
    assert header.sample_ids == [s.sample_id for s in samples]
    assert header.world_seeds == [0, 1, 2] and header.noise_seeds == [1000, 1001, 1002]
    assert tensors["latents"].dtype == torch.float16 and tensors["rgb"].dtype == torch.uint8
    for j, s in enumerate(samples):
        assert torch.equal(tensors["latents"][j], s.latents.half())
        assert torch.equal(tensors["rgb"][j], s.rgb)
        assert torch.equal(tensors["K"][j], s.K) and torch.equal(tensors["c2w"][j], s.c2w)
        assert torch.equal(tensors["depth"][j], s.depth.half())
        assert torch.equal(tensors["gt_depth"][j], s.gt_depth.half())
        assert torch.equal(tensors["input_depth"][j], s.input_depth)  # inf (sky) survives
    assert header.shapes["rgb"] == [3, V, T, H, W, 3]


def test_identical_content_gives_identical_bytes(tmp_path):
    samples = [make_sample(i) for i in range(2)]
    a = write_shard(tmp_path / "a.safetensors", 0, samples, SETTINGS).read_bytes()
    b = write_shard(tmp_path / "b.safetensors", 0, samples, dict(reversed(list(SETTINGS.items())))).read_bytes()
    assert a == b
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_write_refuses_mixed_shapes_without_leaving_a_file(tmp_path):
    s0, s1 = make_sample(0), make_sample(1)
    s1.rgb = s1.rgb[:, :, :4]
    with pytest.raises(ConfigError, match="rgb"):
        write_shard(tmp_path / shard_name(0), 0, [s0, s1], SETTINGS)
    assert not any(tmp_path.iterdir())


def test_header_validation(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(FormatError, match="not a readable safetensors"):
        read_shard_header(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(FormatError, match="not a lyra SDG shard"):
        read_shard_header(foreign)
    good = write_shard(tmp_path / shard_name(0), 0, [make_sample(0)], SETTINGS)
    _, tensors = read_shard(good)
    with safe_open(str(good), "pt") as f:
        meta = json.loads(f.metadata()[HEADER_KEY])
    future = tmp_path / "future.safetensors"
    save_file(tensors, str(future), metadata={HEADER_KEY: json.dumps(meta | {"format_version": 99})})
    with pytest.raises(FormatError, match="version 99"):
        read_shard_header(future)
    short = tmp_path / "short.safetensors"
    bad = tensors | {"depth": tensors["depth"][..., :3].contiguous()}
    save_file(bad, str(short), metadata={HEADER_KEY: json.dumps(meta)})
    with pytest.raises(FormatError, match="inconsistent tensor shapes: depth"):
        read_shard_header(short)
    missing = tmp_path / "missing.safetensors"
    save_file({k: v for k, v in tensors.items() if k != "c2w"}, str(missing), metadata={HEADER_KEY: json.dumps(meta)})
    with pytest.raises(FormatError, match="missing tensors"):
        read_shard_header(missing)


def test_check_settings_names_the_differences():
    check_settings({"a": (1, 2)}, {"a": [1, 2]}, "x")  # JSON-equal is equal
    with pytest.raises(ConfigError, match=r"steps: 2 there, 35 now"):
        check_settings({"steps": 2, "seed": 0}, {"steps": 35, "seed": 0}, "OUT")


def test_manifest_scan_and_complete(tmp_path):
    write_shard(tmp_path / shard_name(0), 0, [make_sample(0), make_sample(1)], SETTINGS)
    m = scan_manifest(tmp_path, SETTINGS, {"start": 0, "count": 3, "shard_size": 2})
    assert m["num_samples"] == 2 and m["complete"] is False
    write_shard(tmp_path / shard_name(1), 1, [make_sample(2)], SETTINGS)
    m = scan_manifest(tmp_path, SETTINGS, {"start": 0, "count": 3, "shard_size": 2})
    assert m["complete"] is True and [e["num_samples"] for e in m["shards"]] == [2, 1]
    assert m["shapes"]["latents"] == [V, 16, 2, 1, 2]
    with pytest.raises(ConfigError, match="different settings"):
        scan_manifest(tmp_path, SETTINGS | {"steps": 35})
    assert read_manifest(tmp_path)["num_samples"] == 3  # no sdg.json: built by scanning
    write_manifest(tmp_path, m)
    assert json.loads((tmp_path / MANIFEST_NAME).read_text())["shards"] == m["shards"]
    (tmp_path / shard_name(2)).write_bytes(b"damaged")
    assert scan_manifest(tmp_path)["damaged"] == [shard_name(2)]


def test_shard_dataset_items_ranks_and_pickling(tmp_path):
    samples = [make_sample(i, gt=True) for i in range(5)]
    write_shard(tmp_path / shard_name(0), 0, samples[:3], SETTINGS)
    write_shard(tmp_path / shard_name(1), 1, samples[3:], SETTINGS)
    write_manifest(tmp_path, scan_manifest(tmp_path))
    ds = ShardDataset(tmp_path, cache_shards=1)
    assert len(ds) == 5 and ds.sample_ids == [s.sample_id for s in samples]
    for i in (4, 0, 3, 1, -1):
        item, s = ds[i], samples[i]
        assert item["sample_id"] == s.sample_id and item["world_seed"] == s.world_seed
        assert item["noise_seed"] == s.noise_seed
        assert torch.equal(item["latents"], s.latents.half().float())
        assert torch.equal(item["rgb"], s.rgb.permute(0, 1, 4, 2, 3).float() / 255)
        assert torch.equal(item["image"], s.image.permute(2, 0, 1).float() / 255)
        assert torch.equal(item["gt_depth"], s.gt_depth.half().float())
        cams = sample_cameras(item)
        assert tuple(cams.shape) == (V, T) and (cams.width, cams.height) == (W, H)
        assert torch.equal(cams.c2w, s.c2w)
    assert len(ds._open) == 1  # LRU of open shards
    with pytest.raises(IndexError):
        ds[5]
    raw = ShardDataset(tmp_path, as_float=False)[1]
    assert raw["rgb"].dtype == torch.uint8 and torch.equal(raw["rgb"], samples[1].rgb)
    r0, r1 = ShardDataset(tmp_path, rank=0, world_size=2), ShardDataset(tmp_path, rank=1, world_size=2)
    assert r0.sample_ids + r1.sample_ids == ds.sample_ids and len(r1) == 2
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[2]["depth"], ds[2]["depth"])
    with pytest.raises(ConfigError):
        ShardDataset(tmp_path, rank=2, world_size=2)


def test_any_latent_channel_count_round_trips_and_one_count_per_folder(tmp_path):
    """A tokenizer with C = 8 latent channels: latents [S, V, 8, t, h, w] and Plücker [S, V, 16, t, h, w] are
    written, checked and read back; a shard of another C in the same folder, or a Plücker tensor that is not 2C,
    is refused."""
    samples = [make_sample(i, channels=8, plucker=True) for i in range(2)]
    path = write_shard(tmp_path / shard_name(0), 0, samples, SETTINGS)
    header, tensors = read_shard(path)
    assert header.latent_channels == 8 and header.shapes["plucker"] == [2, V, 16, 2, 1, 2]
    for j, s in enumerate(samples):
        assert torch.equal(tensors["latents"][j], s.latents.half())
        assert torch.equal(tensors["plucker"][j], s.plucker.half())
    ds = ShardDataset(tmp_path)
    assert ds.latent_channels == 8 and ds[1]["latents"].shape == (V, 8, 2, 1, 2)
    assert torch.equal(ds[1]["latents"], samples[1].latents.half().float())
    # the official 16 channels read as before
    other = tmp_path / "sixteen"
    other.mkdir()
    write_shard(other / shard_name(0), 0, [make_sample(0)], SETTINGS)
    assert ShardDataset(other).latent_channels == 16
    # a 16-channel shard next to 8-channel ones
    write_shard(tmp_path / shard_name(1), 1, [make_sample(5)], SETTINGS)
    with pytest.raises(FormatError, match="16-channel latents, the other shards' have 8"):
        scan_manifest(tmp_path)
    # Plücker latents of another C than the latents'
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    bad = tmp_path / "bad.safetensors"
    save_file(tensors | {"plucker": tensors["plucker"][:, :, :12].contiguous()}, str(bad), metadata=meta)
    with pytest.raises(FormatError, match=r"plucker \[2, 6, 12, 2, 1, 2\].*2C for C = 8"):
        read_shard_header(bad)
