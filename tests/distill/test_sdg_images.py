"""``lyra sdg --images DIR`` on a user's own photos, then a short fine-tune of the shipped student on them:
each photo's camera comes from its EXIF focal length (else 50°), its depth is estimated; an empty folder or an
unreadable photo fails in one line before any model loads or any file is written.

Three tiny photos at a 48 × 80 working size, one sampler step, two training steps (CPU)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from lyra.cli import main
from lyra.inputs_exif import FULL_FRAME_DIAGONAL_MM
from lyra.shards import ShardDataset, read_manifest

SIZE = "48x80"  # HEIGHTxWIDTH
STAGES = {"stages": [{"name": "short", "until": 1.0, "frames": 9, "views": 2, "target_frames": 2}]}


def _photo(path, w: int, h: int, seed: int, focal35: float | None = None) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full((h, w), 40 * seed)], -1)
    img = np.clip(img + rng.integers(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    if focal35 is not None:
        exif.get_ifd(0x8769)[0xA405] = focal35
    Image.fromarray(img).save(path, exif=exif)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    _photo(d / "a_exif.jpg", 160, 120, 1, focal35=26)  # a 4:3 phone photo with its focal length
    _photo(d / "b_plain.png", 96, 160, 2)  # portrait, no EXIF
    _photo(d / "c_wide.jpg", 200, 100, 3)
    (d / "notes.txt").write_text("not an image; ignored")
    return d


@pytest.fixture(scope="module")
def sdg(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("sdg") / "mine"
    code = main(["sdg", str(out), "--images", str(photos), "--size", SIZE, "--steps", "1", "--shard-size", "2",
                 "--store-plucker", "--device", "cpu", "--no-progress"])
    assert code == 0
    return out


def test_photos_become_sdg_scenes_with_their_cameras(sdg):
    m = read_manifest(sdg)
    assert m["num_samples"] == 3 and m["complete"] and len(m["shards"]) == 2
    src = m["settings"]["source"]
    assert src["kind"] == "images" and src["size"] == [48, 80] and src["camera"] == "exif-or-default"
    ds = ShardDataset(sdg)
    samples = [ds[i] for i in range(3)]
    for s, name in zip(samples, ("a_exif.jpg", "b_plain.png", "c_wide.jpg"), strict=True):
        assert name in str(s["sample_id"])
        assert tuple(s["rgb"].shape) == (6, 17, 3, 48, 80) and tuple(s["image"].shape) == (3, 48, 80)
        assert s["K"].shape[:1] == (6,)  # the six GEN3C trajectories
        assert torch.isfinite(s["depth"]).any()
        assert s["plucker"].shape[:2] == (6, 32)  # stored: the fine-tune does not encode them again
        assert torch.equal(s["c2w"][:, 0], torch.eye(4).expand(6, 4, 4))  # frame 0 = the input camera
    # a_exif.jpg: 26 mm (35 mm equivalent) on a 160x120 photo, centre-cropped to 160x96 and scaled to 80x48
    f_exif = 26 / FULL_FRAME_DIAGONAL_MM * math.hypot(160, 120) * 80 / 160
    assert float(samples[0]["K"][0, 0, 0, 0]) == pytest.approx(f_exif, rel=1e-4)
    # no EXIF: the default 50° vertical field of view of the photo as taken, then scaled and cropped with it.
    # c_wide.jpg (200x100): its sides are cropped, so the working image keeps the 50° (f = 24 / tan 25°)
    assert float(samples[2]["K"][0, 0, 1, 1]) == pytest.approx(24 / math.tan(math.radians(25)), rel=1e-3)
    # b_plain.png (portrait 96x160): scaled to 80 wide (f = 80 / tan 25° · 80/96), its middle 48 rows kept
    assert float(samples[1]["K"][0, 0, 1, 1]) == pytest.approx(80 / math.tan(math.radians(25)) * 80 / 96, rel=1e-2)


def test_short_fine_tune_of_the_student_on_them(sdg, tmp_path):
    from pathlib import Path

    from safetensors.torch import load_file

    import lyra

    init = Path(lyra.__file__).parent / "weights" / "student_tiny"
    stages = tmp_path / "stages.json"
    stages.write_text(json.dumps(STAGES))
    run = tmp_path / "run"
    code = main(["train", "student", "--data", str(sdg), "--init-from", str(init), "--out", str(run), "--steps", "2",
                 "--cpu", "--no-progress", "--warmup", "1", "--lr", "1e-3", "--ema", "0", "--stages", str(stages)])
    assert code == 0
    exported = load_file(run / "export" / "model.safetensors")
    shipped = load_file(init / "model.safetensors")
    assert exported.keys() == shipped.keys()
    changed = sum(not torch.equal(exported[k].float(), shipped[k].float()) for k in shipped)
    assert changed > 0  # trained from the shipped weights, and moved
    record = json.loads((run / "export" / "training_record.json").read_text())
    assert record["steps"] == 2


@pytest.mark.parametrize("case", ["empty", "unreadable", "size"])
def test_bad_image_folders_fail_in_one_line_before_anything(tmp_path, capsys, case):
    d = tmp_path / "photos"
    d.mkdir()
    if case == "empty":
        (d / "readme.txt").write_text("no photos here")
    else:
        _photo(d / "ok.jpg", 64, 48, 1)
        if case == "unreadable":
            (d / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "sdg"
    args = ["sdg", str(out), "--images", str(d), "--steps", "1", "--device", "cpu", "--no-progress"]
    args += ["--size", "50x80"] if case == "size" else ["--size", SIZE]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and err.startswith("lyra sdg: error:"), err
    assert {"empty": "holds no images", "unreadable": "broken.jpg cannot be read as an image",
            "size": "multiples of 16"}[case] in err
    assert not out.exists() or not any(out.iterdir())  # no shard, no manifest
