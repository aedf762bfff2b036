"""Student training on micro SDG data: batches and sharding, exact resume, export, evaluation, CLI and the
accelerate configs (CPU, one process; the multi-GPU runs are in the GPU test at the end)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lyra.distill.stages import Stage, StagePlan
from lyra.geometry import Cameras
from lyra.shards import ShardDataset
from lyra.student import LatentDecoder
from lyra.train.recipes.student import SampleStream, main, pack_cameras, unpack_cameras
from tests.distill.student_fakes import make_fake_sdg

REPO = Path(__file__).resolve().parents[2]
ACCELERATE_CONFIGS = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed_zero2": "DEEPSPEED"}
STAGES = {"stages": [
    {"name": "short", "until": 0.5, "frames": 9, "views": 2, "target_frames": 2},
    {"name": "prune", "until": 1.0, "views": [1, 2], "target_frames": 2, "end_weight": 2.0,
     "losses": ["mse", "perceptual", "depth", "opacity"], "prune_ratio": 0.8},
]}


@pytest.fixture(scope="module")
def tokenizer():
    from lyra.tokenizer import Tokenizer

    return Tokenizer.from_preset("tiny")


@pytest.fixture(scope="module")
def sdg(tmp_path_factory, tokenizer) -> Path:
    """Three micro worlds of the test split (seeds 0-2), two trajectories each, shards of two samples."""
    return make_fake_sdg(tmp_path_factory.mktemp("sdg") / "data", [0, 1, 2], tokenizer)


@pytest.fixture(scope="module")
def stages_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "stages.json"
    p.write_text(json.dumps(STAGES))
    return p


def _args(sdg: Path, out: Path, stages: Path, *extra: str) -> list[str]:
    return ["--data", str(sdg), "--out", str(out), "--steps", "4", "--cpu", "--no-progress", "--log-every", "1",
            "--warmup", "1", "--ckpt-every", "2", "--stages", str(stages), "--seed", "3", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sdg, stages_file) -> Path:
    """An uninterrupted 4-step run with export."""
    out = tmp_path_factory.mktemp("run") / "a"
    assert main(_args(sdg, out, stages_file)) == 0
    return out


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_cameras_travel_bit_exactly():
    g = torch.Generator().manual_seed(0)
    cams = Cameras(torch.randn(2, 3, 3, 3, generator=g), torch.randn(2, 3, 4, 4, generator=g) * 100, 80, 48)
    bits = pack_cameras(cams)
    assert bits.dtype == torch.int32 and bits.shape == (2, 3, 25) and not torch.is_floating_point(bits)
    back = unpack_cameras(bits, 80, 48)
    assert torch.equal(back.K, cams.K) and torch.equal(back.c2w, cams.c2w) and (back.width, back.height) == (80, 48)


def test_sample_stream_shards_and_resumes(sdg):
    ds = ShardDataset(sdg, as_float=False)
    plan = StagePlan([Stage("a", 2, views=(1, 2)), Stage("b", 1.0, views=2, target_frames=3, end_weight=1.0)])

    def stream(b, rank=0, world=1):
        return SampleStream(ds, b, plan, lambda: 6, seed=5, process_index=rank, num_processes=world)

    one = iter(stream(2))
    r0, r1 = iter(stream(1, 0, 2)), iter(stream(1, 1, 2))
    for _ in range(4):  # 2 processes × 1 sample see what 1 process × 2 samples sees, with the same choices
        big, a, b = next(one), next(r0), next(r1)
        assert big["sample_id"] == a["sample_id"] + b["sample_id"]
        for k in ("stage", "views", "frames"):
            assert torch.equal(torch.as_tensor(big[k]), torch.as_tensor(a[k])) and torch.equal(
                torch.as_tensor(a[k]), torch.as_tensor(b[k]))
    # every sample once per epoch (3 samples, batches of 1)
    s = stream(1)
    it = iter(s)
    assert sorted(next(it)["sample_id"][0] for _ in range(3)) == sorted(ds.sample_ids)
    # stage by optimiser step; frames drawn per selected view
    batch = next(it)
    assert batch["stage"] == 1 and batch["frames"].shape == (2, 3)
    # resume: a fresh stream with the saved state continues exactly, also on another process count
    state = s.state_dict()
    nxt = next(it)
    fresh = stream(1)
    fresh.load_state_dict(state)
    again = next(iter(fresh))
    assert again["sample_id"] == nxt["sample_id"] and torch.equal(again["frames"], nxt["frames"])
    assert torch.equal(again["latents"], nxt["latents"])
    two = [stream(1, r, 2) for r in range(2)]
    for t in two:
        t.load_state_dict(state)
    assert next(iter(two[0]))["sample_id"] == nxt["sample_id"]


def test_resume_is_exact_and_export_round_trips(trained, tmp_path, sdg, stages_file):
    b = tmp_path / "b"
    assert main([*_args(sdg, b, stages_file), "--until", "2", "--no-export"]) == 0
    assert not (b / "export").exists()
    assert main([*_args(sdg, b, stages_file), "--resume"]) == 0
    ra, rb = _rows(trained), _rows(b)
    assert [r["step"] for r in rb] == ["1", "2", "3", "4"]
    for x, y in zip(ra, rb, strict=True):  # same losses at every step, to the logged digits
        assert {k: x[k] for k in ("loss", "mse", "depth", "opacity", "perceptual", "stage", "views")} == \
               {k: y[k] for k in ("loss", "mse", "depth", "opacity", "perceptual", "stage", "views")}
    assert ra[0]["stage"] == "0" and ra[-1]["stage"] == "1" and ra[-1]["opacity"] != "nan"
    ma = LatentDecoder.from_pretrained(trained / "export")
    mb = LatentDecoder.from_pretrained(b / "export")
    meta = mb.meta
    for (k, va), (_, vb) in zip(ma.state_dict().items(), mb.state_dict().items(), strict=True):
        assert torch.equal(va, vb), k
    assert meta["tokenizer"] == "tiny" and meta["decoder"]["width"] == 128 and meta["single_view"] is False
    rec = json.loads((trained / "export" / "training_record.json").read_text())
    assert rec["losses"]["perceptual"] == "ssim" and rec["steps"] == 4 and rec["complete"]
    assert rec["stages"] == STAGES | {"stages": [dict(Stage.from_dict(s).to_dict()) for s in STAGES["stages"]]}
    size = (trained / "export" / "model.safetensors").stat().st_size
    assert size < 2 * ma.num_parameters() + 100_000  # fp16


def test_evaluation_against_teacher_and_ground_truth(trained, sdg, tokenizer):
    from lyra.eval.student_benchmark import evaluate_fidelity, evaluate_gt

    model = LatentDecoder.from_pretrained(trained / "export")
    fid = evaluate_fidelity(model, sdg, tokenizer, max_scenes=2, frame_stride=4, backend="torch", progress=False)
    assert fid["scenes"] == 2 and fid["frames_per_scene"] == 2 * 3  # frames 0, 4, 8 of two trajectories
    assert all(torch.isfinite(torch.tensor(fid[k])) for k in ("psnr", "ssim", "psnr_pruned", "ssim_pruned"))
    assert fid["prune_cost_db"] == pytest.approx(fid["psnr"] - fid["psnr_pruned"])
    none = evaluate_fidelity(model, sdg, tokenizer, max_scenes=1, frame_stride=8, backend="torch",
                             prune_ratio=0.0, progress=False)  # "pruning" nothing changes nothing
    assert none["psnr_pruned"] == none["psnr"] and none["ssim_pruned"] == none["ssim"]
    gt = evaluate_gt(model, sdg, tokenizer, max_scenes=2, frame_stride=4, backend="torch", progress=False)
    assert gt["world_seeds"] == [0, 1] and gt["max_camera_offset"] == 0.0
    # the stand-in teacher is the tokenizer round trip of the GT frames: far better than the warp-only baseline
    assert gt["psnr_teacher"] > 20.0 and gt["psnr_teacher"] > gt["psnr_warp"] + 3.0
    assert gt["psnr_student"] < gt["psnr_teacher"]  # 4 training steps
    # the frame groups of lyra.eval: frames 0, 4, 8 of 9 are the input view and two far frames (near = 1..2)
    assert set(fid["table"]) == {"input", "far"} and set(fid["table"]["far"]) == {"student", "student_pruned"}
    assert fid["table"]["far"]["student"]["sharpness"] > 0 and fid["gmsd"] >= 0 and 0 < fid["ms_ssim"] <= 1
    assert set(gt["table"]) == {"input", "far"}
    assert set(gt["table"]["far"]) == {"student", "teacher", "filled_warp", "warp"}
    assert gt["psnr_filled_warp"] > gt["psnr_warp"]  # inpainted holes beat white ones
    assert gt["table"]["far"]["filled_warp"]["coverage"] == 1.0 and "abs_rel" in gt["table"]["far"]["student"]


def test_cli_dispatch_and_ablation_flags(tmp_path, sdg, stages_file):
    from lyra.cli import main as lyra_main

    out = tmp_path / "abl"
    args = _args(sdg, out, stages_file, "--single-view", "--no-depth-loss", "--no-prune", "--ema", "0")
    args[args.index("--steps") + 1] = "1"
    assert lyra_main(["train", "student", *args]) == 0
    rec = json.loads((out / "export" / "training_record.json").read_text())
    assert rec["ablations"] == {"no_depth_loss": True, "no_prune": True, "single_view": True,
                                "no_motion_reversal": False}
    assert all("depth" not in s["losses"] and s["prune_ratio"] is None for s in rec["stages"]["stages"])
    meta = LatentDecoder.from_pretrained(out / "export").meta
    assert meta["single_view"] is True
    with pytest.raises(SystemExit):
        lyra_main(["train", "nothing"])
    assert lyra_main(["train", "student", "--data", str(tmp_path / "none"), "--out", str(out)]) == 2


# ---------------------------------------------------------------------------------------- accelerate configs
@pytest.mark.parametrize("name", list(ACCELERATE_CONFIGS))
def test_accelerate_configs_parse_and_launch_validates(name):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    path = REPO / "configs" / "accelerate" / f"{name}.yaml"
    cfg = load_config_from_file(str(path))
    assert cfg.distributed_type.value == ACCELERATE_CONFIGS[name]
    assert cfg.mixed_precision == "bf16" and cfg.num_processes == -1  # left to --num_processes
    args = launch_command_parser().parse_args(["--config_file", str(path), "--num_processes", "2", "-m",
                                               "lyra.train.recipes.student", "--help"])
    args, _, mp = _validate_launch_command(args)
    assert args.num_processes == 2 and args.mixed_precision == "bf16"
    with pytest.raises(ValueError, match="num_processes"):
        _validate_launch_command(launch_command_parser().parse_args(["--config_file", str(path), "-m", "x"]))
    if name == "fsdp":  # what `accelerate launch` hands the processes
        from accelerate.utils.launch import prepare_multi_gpu_env

        env = prepare_multi_gpu_env(args)
        assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_SHARDING_STRATEGY"] == "FULL_SHARD"
        assert env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT" and env["FSDP_USE_ORIG_PARAMS"] == "true"
        assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
        import lyra.student.decoder as dec
        import lyra.student.mamba2 as m2

        for cls in env["FSDP_TRANSFORMER_CLS_TO_WRAP"].split(","):  # the wrap units exist in the decoder
            assert hasattr(dec, cls) or hasattr(m2, cls)
    if name == "deepspeed_zero2":
        assert args.zero_stage == 2 and args.gradient_clipping == 1.0


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["fsdp", "deepspeed_zero2"])
def test_one_gpu_sharded_training_runs_and_resumes(tmp_path, sdg, stages_file, name):
    """``accelerate launch`` with one process (DDP needs two: see the multi-GPU commands in the report)."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    if name.startswith("deepspeed"):
        pytest.importorskip("deepspeed")
    out = tmp_path / name
    base = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(REPO / "configs" / "accelerate" / f"{name}.yaml"), "--num_processes", "1", "-m",
            "lyra.train.recipes.student"]
    args = _args(sdg, out, stages_file)
    args.remove("--cpu")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    for extra in (["--until", "2", "--no-export"], ["--resume"]):
        res = subprocess.run([*base, *args, *extra], env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rec = json.loads((out / "export" / "training_record.json").read_text())
    assert rec["steps"] == 4 and name.split("_")[0].upper() in rec["distributed"]
    shutil.rmtree(out)


def test_shards_of_other_latent_channels_are_refused(tmp_path, sdg, stages_file, tokenizer, capsys):
    """The SDG data holds the tiny tokenizer's 16-channel latents: a student built for 8 channels is refused in one
    line by the trainer and by the fidelity benchmark, before any step or forward."""
    from dataclasses import replace

    from lyra.errors import ConfigError
    from lyra.eval.student_benchmark import evaluate_fidelity
    from lyra.student import PRESETS

    cfg8 = replace(PRESETS["tiny"], latent_channels=8)
    model_file = tmp_path / "c8.json"
    model_file.write_text(json.dumps(cfg8.to_dict()))
    out = tmp_path / "c8run"
    assert main(_args(sdg, out, stages_file, "--model", str(model_file))) == 2
    err = capsys.readouterr().err
    assert f"holds 16-channel latents, the student --model {model_file} reads 8" in err
    assert not (out / "export").exists()
    with pytest.raises(ConfigError, match="^the SDG data holds 16-channel latents, the student reads 8$"):
        evaluate_fidelity(LatentDecoder(cfg8), sdg, tokenizer, max_scenes=1, backend="torch", progress=False)
