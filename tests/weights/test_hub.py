"""lyra.weights.hub is the one preset and weights registry: every model's shipped folder and every product
preset's parts resolve through it, and its hashes are the ones the pipeline records."""

from __future__ import annotations

import pytest

from lyra.errors import ConfigError
from lyra.weights.hub import (
    DEPTH_NETS,
    PRESETS,
    TOKENIZERS,
    depth_net_dir,
    preset_weights_dir,
    sha256_file,
    tokenizer_dir,
    weights_hashes,
    weights_root,
)


def test_every_preset_names_models_the_hub_knows():
    from lyra.student.decoder import PRESETS as STUDENT_ARCHS
    from lyra.teacher.denoiser import PRESETS as DENOISER_ARCHS
    from lyra.tokenizer.presets import PRESETS as TOKENIZER_ARCHS

    assert set(TOKENIZERS) == set(TOKENIZER_ARCHS)  # one weights folder entry per tokenizer architecture
    for p in PRESETS.values():
        assert p.tokenizer in TOKENIZERS and p.denoiser in DENOISER_ARCHS
        assert p.tokenizer_dynamic is None or p.tokenizer_dynamic in TOKENIZERS
        assert p.depth is None or p.depth in DEPTH_NETS
        assert p.name in STUDENT_ARCHS or p.student is None


def test_the_dynamic_tokenizer_defaults_to_the_static_one():
    from dataclasses import replace

    from lyra.weights.hub import Preset

    for p in PRESETS.values():
        assert p.tokenizer_for(False) == p.tokenizer
        assert p.tokenizer_for(True) == (p.tokenizer_dynamic or p.tokenizer)
    tiny = PRESETS["tiny"]
    assert tiny.tokenizer_dynamic is None and tiny.tokenizer_for(True) == "tiny"  # until the lead switches it
    split = replace(tiny, tokenizer_dynamic="tiny_v2")
    assert isinstance(split, Preset) and (split.tokenizer_for(False), split.tokenizer_for(True)) == ("tiny", "tiny_v2")


def test_tiny_ships_every_part_where_the_hub_says():
    markers = {"teacher": "config.json", "teacher_dynamic": "config.json", "student": "student.json",
               "student_dynamic": "student.json"}
    for part, marker in markers.items():
        folder = preset_weights_dir("tiny", part)
        assert folder is not None and folder.parent == weights_root() and (folder / marker).is_file(), part
    assert (depth_net_dir("tiny") / "model.safetensors").is_file()
    tok = tokenizer_dir("tiny")
    assert tok is not None and (tok / "diffusion_pytorch_model.safetensors").is_file()
    assert preset_weights_dir("official", "student") is None and tokenizer_dir("official") is None


def test_bad_names_are_refused():
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_weights_dir("huge", "teacher")
    with pytest.raises(ValueError, match="unknown preset part"):
        preset_weights_dir("tiny", "decoder")
    with pytest.raises(ConfigError, match="unknown tokenizer preset"):
        tokenizer_dir("huge")
    with pytest.raises(ConfigError, match="unknown depth preset"):
        depth_net_dir("huge")


def test_weights_hashes_of_a_file_a_folder_and_nothing(tmp_path):
    (tmp_path / "a.safetensors").write_bytes(b"abc")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("not weights")
    assert weights_hashes(tmp_path / "a.safetensors") == sha256_file(tmp_path / "a.safetensors") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")  # sha256("abc")
    assert set(weights_hashes(tmp_path)) == {"a.safetensors", "config.json"}
    assert weights_hashes(None) is None and weights_hashes(tmp_path / "absent") is None


def test_the_pipeline_finds_the_student_through_the_hub():
    from lyra.pipeline import StudentWeightsMissing, student_weights_dir

    assert student_weights_dir("tiny") == preset_weights_dir("tiny", "student")
    with pytest.raises(StudentWeightsMissing):
        student_weights_dir("official")
