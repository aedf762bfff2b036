"""The CLI on good and bad files: one-line errors, non-zero exits, never a partial output file."""

import json
import os

import numpy as np
import pytest
import torch

from lyra.cli import main
from lyra.gaussians.io import load_gaussians, save_gaussians


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_info_reports_count_and_histogram(tmp_path, capsys, scene):
    path = tmp_path / "s.ply"
    save_gaussians(scene, path)
    code, out, _ = run_cli(capsys, "info", str(path))
    assert code == 0
    assert "gaussians   400" in out
    assert "sh degree   0" in out
    rows = [line for line in out.splitlines() if line.strip().startswith("[")]
    assert len(rows) == 10
    counts = [int(r.split()[2].replace(",", "")) for r in rows]
    expected = torch.histc(scene.opacities, bins=10, min=0, max=1)
    assert counts == [int(v) for v in expected]


@pytest.mark.parametrize("src_ext, dst_ext", [(".ply", ".splat"), (".ply", ".spz"), (".spz", ".ply"),
                                              (".splat", ".spz")])
def test_convert_between_formats(tmp_path, capsys, scene, src_ext, dst_ext):
    src, dst = tmp_path / f"a{src_ext}", tmp_path / f"b{dst_ext}"
    save_gaussians(scene, src)
    code, out, _ = run_cli(capsys, "convert", str(src), str(dst))
    assert code == 0 and "400 Gaussians" in out
    back = load_gaussians(dst)
    assert len(back) == 400
    assert torch.allclose(back.means, scene.means, atol=0.01)
    assert torch.allclose(back.colors, scene.colors, atol=0.03)


def test_convert_keep_prunes(tmp_path, capsys, scene):
    src, dst = tmp_path / "a.ply", tmp_path / "b.ply"
    save_gaussians(scene, src)
    assert run_cli(capsys, "convert", str(src), str(dst), "--keep", "0.2")[0] == 0
    back = load_gaussians(dst)
    assert len(back) == 80
    assert back.opacities.min() >= torch.topk(scene.opacities, 80).values.min() - 1e-6


def test_render_video_and_frames(tmp_path, capsys, scene):
    src = tmp_path / "s.ply"
    save_gaussians(scene, src)
    video, frames = tmp_path / "v.mp4", tmp_path / "frames"
    code, out, err = run_cli(capsys, "render", str(src), "-o", str(video), "--frames", str(frames),
                             "--num-frames", "3", "--size", "48x64", "--backend", "torch", "--device", "cpu")
    assert code == 0, err
    assert video.stat().st_size > 0
    pngs = sorted(frames.iterdir())
    assert [p.name for p in pngs] == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    import imageio.v2 as imageio

    img = imageio.imread(pngs[0])
    assert img.shape == (48, 64, 3)
    assert img.min() < 200  # something was drawn on the white background
    reader = imageio.get_reader(video)
    assert sum(1 for _ in reader) == 3


def test_render_gen3c_trajectory_and_path_file(tmp_path, capsys, scene):
    src = tmp_path / "s.splat"
    save_gaussians(scene, src)
    assert run_cli(capsys, "render", str(src), "--frames", str(tmp_path / "left"), "--trajectory", "left",
                   "--num-frames", "2", "--size", "32x48", "--backend", "torch", "--device", "cpu")[0] == 0
    path = tmp_path / "path.json"
    path.write_text(json.dumps({"width": 40, "height": 30, "frames": [
        {"c2w": np.eye(4).tolist(), "fov_y_deg": 60.0}, {"c2w": np.eye(4).tolist(), "fov_y_deg": 40.0}]}))
    assert run_cli(capsys, "render", str(src), "--frames", str(tmp_path / "custom"), "--trajectory", str(path),
                   "--backend", "torch", "--device", "cpu")[0] == 0
    import imageio.v2 as imageio

    left = sorted((tmp_path / "left").iterdir())
    assert [p.name for p in left] == ["frame_00000.png", "frame_00001.png"]
    assert all(imageio.imread(p).shape == (32, 48, 3) for p in left)
    custom = sorted((tmp_path / "custom").iterdir())
    assert [p.name for p in custom] == ["frame_00000.png", "frame_00001.png"]
    wide, narrow = (imageio.imread(p).astype(np.int16) for p in custom)
    assert wide.shape == narrow.shape == (30, 40, 3)  # the path file's size
    # the same pose at 60° and 40° vertical FoV: different frames, and the narrower one magnifies the scene,
    # so more of its frame is covered (not the white background)
    assert np.abs(wide - narrow).max() > 50

    def covered(img: np.ndarray) -> float:
        return float((img.min(axis=-1) < 250).mean())

    assert 0.0 < covered(wide) < covered(narrow)


# ----------------------------------------------------------------------------- bad input
def write_nan_ply(path, scene):
    save_gaussians(scene, path)
    from plyfile import PlyData

    ply = PlyData.read(str(path), mmap=False)
    ply["vertex"].data["x"][3] = np.nan
    ply.write(str(path))


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "truncated", "wrong_format", "nan"])
@pytest.mark.parametrize("command", ["info", "convert", "render"])
def test_bad_input_files_give_one_line_errors(tmp_path, capsys, scene, case, command):
    bad = tmp_path / "in.ply"
    if case == "directory":
        bad = tmp_path / "dir.ply"
        bad.mkdir()
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "truncated":
        save_gaussians(scene, bad)
        data = bad.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif case == "wrong_format":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    elif case == "nan":
        write_nan_ply(bad, scene)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = {"info": ["info", str(bad)],
            "convert": ["convert", str(bad), str(out_dir / "o.spz")],
            "render": ["render", str(bad), "-o", str(out_dir / "o.mp4"), "--size", "16x16", "--device", "cpu"]}
    code, out, err = run_cli(capsys, *argv[command])
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"lyra {command}: error:")
    assert "Traceback" not in err
    assert leftovers(out_dir) == []


@pytest.mark.parametrize("target", ["missing_folder", "under_a_file", "bad_extension"])
def test_unwritable_output_leaves_nothing(tmp_path, capsys, scene, target):
    src = tmp_path / "s.ply"
    save_gaussians(scene, src)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    out = {"missing_folder": tmp_path / "nope" / "o.spz", "under_a_file": blocker / "o.spz",
           "bad_extension": tmp_path / "o.xyz"}[target]
    before = leftovers(tmp_path)
    code, _, err = run_cli(capsys, "convert", str(src), str(out))
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert leftovers(tmp_path) == before


def test_failed_writer_leaves_no_partial_video(tmp_path, capsys, scene, monkeypatch):
    src = tmp_path / "s.ply"
    save_gaussians(scene, src)
    import lyra.cli.render as render_cli

    def exploding(*args, **kwargs):
        yield torch.zeros(16, 16, 3)
        raise KeyboardInterrupt

    monkeypatch.setattr(render_cli, "render_frames", exploding)
    code, _, err = run_cli(capsys, "render", str(src), "-o", str(tmp_path / "v.mp4"), "--size", "16x16")
    assert code == 130 and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.ply"]


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("render", "convert", "info"):
        assert name in out


def test_render_a_4d_folder_advances_time(tmp_path, capsys):
    from PIL import Image

    from lyra.gaussians import Gaussians
    from lyra.scene import DynamicScene

    gen = torch.Generator().manual_seed(0)
    means = torch.rand(400, 3, generator=gen) * torch.tensor([2.0, 1.2, 0.5]) - torch.tensor([1.0, 0.6, -2.5])
    quats = torch.nn.functional.normalize(torch.randn(400, 4, generator=gen), dim=-1)
    red, blue = (Gaussians(means, quats, torch.full((400, 3), 0.1), torch.full((400,), 0.99),
                           torch.tensor(c).expand(400, 3)) for c in ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)))
    DynamicScene(torch.tensor([0.0, 1.0]), [red, blue]).save(tmp_path / "s4d")

    def colours(folder) -> list[str]:
        out = []
        for f in sorted(folder.iterdir()):
            rgb = np.asarray(Image.open(f))[..., :3].reshape(-1, 3).astype(float).mean(0)
            out.append("red" if rgb[0] > rgb[2] + 20 else "blue" if rgb[2] > rgb[0] + 20 else "?")
        return out

    argv = ["render", str(tmp_path / "s4d"), "--size", "24x32", "--backend", "torch", "--device", "cpu"]
    assert main([*argv, "--frames", str(tmp_path / "f"), "--num-frames", "4"]) == 0
    assert colours(tmp_path / "f") == ["red", "red", "blue", "blue"]  # times 0, 1/3 | 2/3, 1: nearest stored time
    assert main([*argv, "--frames", str(tmp_path / "g"), "--num-frames", "2", "--time", "1"]) == 0
    assert colours(tmp_path / "g") == ["blue", "blue"]
    code, _, err = run_cli(capsys, *argv, "-o", str(tmp_path / "x.mp4"), "--time", "2")
    assert code != 0 and "--time must lie in [0, 1]" in err and not (tmp_path / "x.mp4").exists()
