"""Loading the released checkpoint format: wrappers, prefixes, strictness, safety."""

from __future__ import annotations

import collections

import pytest
import torch
from safetensors.torch import save_file

from lyra.errors import InputFileError, WeightsError
from lyra.student import LatentDecoder, clean_state_dict, load_official_checkpoint, read_state_dict


def random_state_dict(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def official_sd() -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        model = LatentDecoder("official")
    return random_state_dict(model)


def test_official_checkpoint_round_trip_deepspeed_style(tmp_path, official_sd):
    path = tmp_path / "lyra_static.pt"
    torch.save({"module": official_sd}, path)  # the release's layout
    model = load_official_checkpoint(path)
    assert not model.training
    loaded = model.state_dict()
    assert loaded.keys() == official_sd.keys()
    assert all(torch.equal(loaded[k], official_sd[k]) for k in official_sd)


def test_prefixes_and_nested_wrappers_are_stripped(tmp_path, official_sd):
    wrapped = {"state_dict": {f"module._orig_mod.{k}": v for k, v in official_sd.items()}, "step": 7}
    path = tmp_path / "ckpt.pth"
    torch.save(wrapped, path)
    sd = read_state_dict(path)
    assert sd.keys() == official_sd.keys()
    assert clean_state_dict({"model": {"model.a": torch.zeros(1)}}) == {"a": torch.zeros(1)}


def test_safetensors_file(tmp_path):
    model = LatentDecoder("tiny")
    sd = random_state_dict(model, seed=1)
    path = tmp_path / "student.safetensors"
    save_file({f"_orig_mod.{k}": v.contiguous() for k, v in sd.items()}, str(path))
    loaded = load_official_checkpoint(path, config="tiny")
    assert all(torch.equal(loaded.state_dict()[k], sd[k]) for k in sd)


def test_mismatch_lists_missing_unexpected_and_misshaped_keys(tmp_path):
    sd = random_state_dict(LatentDecoder("tiny"))
    del sd["enc_norm.bias"]
    sd["extra.weight"] = torch.zeros(2)
    sd["deconv.bias"] = torch.zeros(13)
    path = tmp_path / "bad.pt"
    torch.save({"module": sd}, path)
    with pytest.raises(WeightsError) as err:
        load_official_checkpoint(path, config="tiny")
    msg = str(err.value)
    assert "1 missing: enc_norm.bias" in msg
    assert "1 unexpected: extra.weight" in msg
    assert "deconv.bias: file [13] vs model [12]" in msg


def test_tiny_file_is_not_the_official_decoder(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(LatentDecoder("tiny").state_dict(), path)
    with pytest.raises(WeightsError, match="mis-shaped"):
        load_official_checkpoint(path)


class Opaque:  # an arbitrary pickled object: refused by weights_only loading
    pass


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"module": {"a": torch.zeros(1)}, "obj": Opaque()}, path)
    with pytest.raises(WeightsError, match="pickled Python objects"):
        read_state_dict(path)


def test_unreadable_and_missing_files(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="not a readable"):
        read_state_dict(junk)
    junk_st = tmp_path / "junk.safetensors"
    junk_st.write_bytes(b"\x00" * 16)
    with pytest.raises(WeightsError, match="safetensors"):
        read_state_dict(junk_st)
    with pytest.raises(InputFileError):
        read_state_dict(tmp_path / "absent.pt")
    nostate = tmp_path / "nostate.pt"
    torch.save(collections.OrderedDict(step=torch.tensor(1), cfg={"a": 1}), nostate)
    with pytest.raises(WeightsError, match="no state dict"):
        read_state_dict(nostate)


def test_official_dynamic_checkpoint_loads_through_the_video_path(tmp_path, official_sd):
    """``lyra_dynamic.pt`` (same names and shapes as the static release, the TSV): found in an official weights
    folder by the video pipeline and loaded strictly with its time embeddings (which the static model ignores)."""
    from lyra.pipeline import resolve_dynamic_weights
    from lyra.pipeline_parts import load_decoder

    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "config.json").write_text("{}")
    torch.save({"module": official_sd}, tmp_path / "lyra_dynamic.pt")
    found = resolve_dynamic_weights("official", tmp_path)
    assert found.student == tmp_path / "lyra_dynamic.pt" and found.teacher == tmp_path / "teacher"
    model, meta = load_decoder(found.student, torch.device("cpu"), torch.float32)
    assert model.config.time_embeddings and meta["preset"] == "official"
    for name in ("patch_time_embed.proj.weight", "patch_time_embed_tgt.proj.weight", "patch_time_embed_tgt.norm.bias"):
        assert torch.equal(model.state_dict()[name], official_sd[name])
    assert tuple(official_sd["patch_time_embed_tgt.proj.weight"].shape) == (512, 16, 1, 2, 2)  # as in the TSV
