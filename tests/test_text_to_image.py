"""Text → image → 3D: :func:`lyra.inputs_text.image_from_prompt` and ``lyra generate --prompt`` run for real through a
tiny random diffusers ``StableDiffusionPipeline`` saved to a temporary folder (:mod:`tests.t2i_fakes`); its bad folders
and options fail with one-line errors before anything is loaded or written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import lyra.pipeline as lp  # noqa: E402
from lyra.cli import main  # noqa: E402
from lyra.errors import ConfigError, WeightsError  # noqa: E402
from lyra.gaussians.io import load_gaussians  # noqa: E402
from lyra.inputs_text import image_from_prompt  # noqa: E402
from tests.t2i_fakes import save_tiny_t2i_pipeline  # noqa: E402

PROMPT = "a red room"


@pytest.fixture(scope="module")
def t2i_dir(tmp_path_factory) -> Path:
    """A tiny random StableDiffusionPipeline folder (save_pretrained layout, < 1 MB)."""
    return save_tiny_t2i_pipeline(tmp_path_factory.mktemp("t2i") / "tiny-sd")


@pytest.fixture
def calls(monkeypatch) -> list[dict]:
    """Records the keyword arguments of every StableDiffusionPipeline call (the real call still runs)."""
    from diffusers import StableDiffusionPipeline

    seen: list[dict] = []
    original = StableDiffusionPipeline.__call__

    def spy(self, *args, **kwargs):
        seen.append({"args": args, **kwargs, "device": self.device, "dtype": self.unet.dtype})
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", spy)
    return seen


def test_tiny_pipeline_is_small_and_a_real_diffusers_folder(t2i_dir):
    index = json.loads((t2i_dir / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert {"unet", "vae", "text_encoder", "tokenizer", "scheduler"} <= {p.name for p in t2i_dir.iterdir()}
    assert sum(p.stat().st_size for p in t2i_dir.rglob("*") if p.is_file()) < 5 * 2**20


def test_image_from_prompt_size_range_and_seed(t2i_dir, calls):
    a = image_from_prompt(PROMPT, t2i_dir, 48, 80, seed=0, steps=2, device="cpu")
    assert a.shape == (3, 48, 80) and a.dtype == torch.float32 and a.device.type == "cpu"
    assert torch.isfinite(a).all() and a.min() >= 0 and a.max() <= 1
    assert a.std() > 0.01  # an image, not a constant
    call = calls[-1]
    assert (call["prompt"], call["height"], call["width"], call["num_inference_steps"]) == (PROMPT, 48, 80, 2)
    assert call["output_type"] == "pt" and isinstance(call["generator"], torch.Generator)
    assert call["device"].type == "cpu" and call["dtype"] == torch.float32
    assert "guidance_scale" not in call  # the pipeline's own default unless asked

    assert torch.equal(image_from_prompt(PROMPT, t2i_dir, 48, 80, seed=0, steps=2, device="cpu"), a)
    assert (image_from_prompt(PROMPT, t2i_dir, 48, 80, seed=1, steps=2, device="cpu") - a).abs().mean() > 0.05
    assert not torch.equal(image_from_prompt("a blue room", t2i_dir, 48, 80, seed=0, steps=2, device="cpu"), a)
    g = image_from_prompt(PROMPT, t2i_dir, 48, 80, seed=0, steps=2, guidance=1.0, device="cpu")
    assert calls[-1]["guidance_scale"] == 1.0 and not torch.equal(g, a)


def test_image_from_prompt_rounds_the_size_up_to_the_model_multiple(t2i_dir, calls):
    img = image_from_prompt(PROMPT, str(t2i_dir), 44, 78, seed=0, steps=1, device="cpu")
    assert img.shape == (3, 44, 78) and torch.isfinite(img).all() and 0 <= img.min() <= img.max() <= 1
    # SD needs multiples of 8 (and of twice its VAE factor, 2 here): drawn at 48 x 80, then fitted back
    assert (calls[-1]["height"], calls[-1]["width"]) == (48, 80)


@pytest.mark.parametrize("form", ["pt4", "pt3", "np", "pil"])
def test_pipeline_outputs_become_one_float_chw_image(form):
    import numpy as np
    from PIL import Image

    from lyra.inputs_text import _t2i_images_to_tensor

    ref = torch.rand(3, 6, 10)
    hwc = (ref.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    images = {"pt4": ref[None].to(torch.bfloat16), "pt3": [ref], "np": ref.permute(1, 2, 0).numpy()[None],
              "pil": [Image.fromarray(hwc)]}[form]
    img = _t2i_images_to_tensor(images)
    assert img.shape == (3, 6, 10) and img.dtype == torch.float32
    assert torch.allclose(img, ref, atol={"pil": 1 / 255, "pt4": 1 / 128}.get(form, 0.0))


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


@pytest.mark.parametrize("case", ["no_model", "missing", "not_pipeline", "bad_index", "no_class", "empty_prompt",
                                  "bad_steps", "bad_guidance", "bad_size", "bad_seed"])
def test_image_from_prompt_config_errors_are_one_line(tmp_path, t2i_dir, case):
    model: Path | None = t2i_dir
    kwargs: dict = {}
    prompt = PROMPT
    if case == "no_model":
        model = None
    elif case == "missing":
        model = tmp_path / "nope"
    elif case == "not_pipeline":
        model = tmp_path
    elif case in ("bad_index", "no_class"):
        model = tmp_path / "m"
        model.mkdir()
        (model / "model_index.json").write_text("{not json" if case == "bad_index" else '{"unet": []}')
    elif case == "empty_prompt":
        prompt = "   "
    elif case == "bad_steps":
        kwargs["steps"] = 0
    elif case == "bad_guidance":
        kwargs["guidance"] = float("nan")
    elif case == "bad_size":
        kwargs["height"] = 0
    elif case == "bad_seed":
        kwargs["seed"] = -1
    size = {"height": kwargs.pop("height", 48), "width": 80}
    with pytest.raises(ConfigError) as e:
        image_from_prompt(prompt, model, **size, device="cpu", **kwargs)
    msg = _one_line(e)
    expected = {"no_model": "--t2i-model DIR", "missing": "no such folder", "not_pipeline": "no model_index.json",
                "bad_index": "unreadable model_index.json", "no_class": "_class_name", "empty_prompt": "empty",
                "bad_steps": "steps", "bad_guidance": "guidance", "bad_size": "size", "bad_seed": "seed"}[case]
    assert expected in msg, msg


def test_unloadable_folders_are_one_line_weights_errors(tmp_path, t2i_dir):
    broken = tmp_path / "broken"
    shutil.copytree(t2i_dir, broken)
    shutil.rmtree(broken / "unet")  # a component missing: local files only, so no download is tried
    with pytest.raises(WeightsError) as e:
        image_from_prompt(PROMPT, broken, 48, 80, device="cpu")
    assert "cannot load the StableDiffusionPipeline text-to-image pipeline" in _one_line(e)

    other = tmp_path / "ddpm"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline",
                                                        "unet": ["diffusers", "UNet2DModel"]}))
    with pytest.raises(WeightsError) as e:  # not a text-to-image pipeline
        image_from_prompt(PROMPT, other, 48, 80, device="cpu")
    assert "DDPMPipeline" in _one_line(e)


def test_cli_prompt_to_scene_end_to_end(tmp_path, capsys, t2i_dir, calls, monkeypatch):
    images: list[torch.Tensor] = []
    real_generate = lp.generate

    def spy_generate(image, **kwargs):
        images.append(image)
        return real_generate(image, **kwargs)

    monkeypatch.setattr(lp, "generate", spy_generate)
    # the command line picks its thread count from the free cores; the reference below must use the same count,
    # or the convolutions sum in another order and the images differ in the last bits
    monkeypatch.setenv("LYRA_THREADS", str(torch.get_num_threads()))
    out = tmp_path / "out"
    out.mkdir()
    code = main(["generate", "--prompt", PROMPT, "--t2i-model", str(t2i_dir), "--t2i-steps", "2", "-o",
                 str(out / "scene.ply"), "--cameras", str(out / "cams.json"), "--teacher-videos", str(out / "teacher"),
                 "--steps", "1", "--size", "48x80", "--seed", "3", "--device", "cpu"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["cams.json", "scene.ply", "teacher"]

    # the prompt image: drawn at the working size with --seed and --t2i-steps, passed to the 3D pipeline as is
    assert [(c["prompt"], c["height"], c["width"], c["num_inference_steps"]) for c in calls] == [(PROMPT, 48, 80, 2)]
    (image,) = images
    assert torch.equal(image, image_from_prompt(PROMPT, t2i_dir, 48, 80, seed=3, steps=2, device="cpu"))

    g = load_gaussians(out / "scene.ply")
    assert len(g) > 0
    for t in (g.means, g.scales, g.quats, g.opacities, g.colors):
        assert torch.isfinite(t).all()
    meta = json.loads((out / "teacher" / "generate.json").read_text())
    assert meta["gaussians"] == len(g) and meta["size"] == [48, 80] and meta["seed"] == 3
    assert meta["input"] == "prompt" and meta["fit"] is None
    assert meta["prompt"]["text"] == PROMPT and meta["prompt"]["steps"] == 2 and meta["prompt"]["seed"] == 3
    assert Path(meta["prompt"]["t2i_model"]) == t2i_dir.resolve()
    assert any(line.split()[:1] == ["text_to_image"] for line in err.splitlines())
    assert f"wrote {out / 'scene.ply'}: {len(g):,} Gaussians" in stdout


@pytest.mark.parametrize("argv", [["--t2i-steps", "2"], ["--t2i-guidance", "0"]])
def test_cli_t2i_options_need_a_prompt(tmp_path, capsys, argv):
    img = tmp_path / "x.png"
    img.write_bytes(b"")
    code = main(["generate", str(img), "-o", str(tmp_path / "s.ply"), *argv, "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code != 0 and "only used with --prompt" in err and err.count("\n") == 1
    assert not (tmp_path / "s.ply").exists()


def test_cli_bad_t2i_steps_fail_before_loading(tmp_path, capsys, t2i_dir, monkeypatch):
    monkeypatch.setattr(lp.ScenePipeline, "from_preset", lambda *a, **k: pytest.fail("no model may be loaded"))
    code = main(["generate", "--prompt", PROMPT, "--t2i-model", str(t2i_dir), "--t2i-steps", "0", "-o",
                 str(tmp_path / "s.ply"), "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("lyra generate: error:") and "steps must be >= 1" in err
    assert err.count("\n") == 1 and not (tmp_path / "s.ply").exists()
