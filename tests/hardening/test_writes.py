"""Failed writes are errors that keep the old file; no temporaries are left behind (issue 23, defects 2, 6, 7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import SRC, cli_code, leftovers, make_scene, one_line_error, run_cli, run_limited

from lyra.fileio import atomic_path, make_temp_dir, recover_replaced_dir, remove_stale_temps, replace_dir
from lyra.gaussians.io import save_gaussians


@pytest.fixture
def splat(tmp_path):
    p = tmp_path / "scene.ply"
    save_gaussians(make_scene(), p)
    return p


def test_failed_encoder_is_an_error_and_keeps_the_old_video(tmp_path, splat, monkeypatch):
    """ffmpeg exiting non-zero (what a full disk does) must not print "wrote" nor replace the old file."""
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\ncat > /dev/null\necho 'Error writing trailer: No space left on device' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake))
    out = tmp_path / "r.mp4"
    out.write_bytes(b"old video")
    code, stdout, stderr = run_cli(["render", str(splat), "-o", str(out), "--num-frames", "2", "--size", "32x48",
                                    "--device", "cpu"])
    assert code != 0 and "wrote" not in stdout
    assert one_line_error(stderr) and "No space left" in stderr
    assert out.read_bytes() == b"old video"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("target", ["r.mp4", "r.gif", "frames"])
def test_full_disk_keeps_old_output(tmp_path, splat, target):
    """A real write failure (file-size limit: EFBIG, like ENOSPC) for mp4, gif and --frames: clean error."""
    out = tmp_path / target
    if target == "frames":
        argv = ["render", str(splat), "--frames", str(out), "--num-frames", "6", "--size", "64x96", "--device", "cpu"]
    else:
        out.write_bytes(b"old")
        argv = ["render", str(splat), "-o", str(out), "--num-frames", "6", "--size", "64x96", "--device", "cpu"]
    r = run_limited(cli_code(argv), fsize=3000, cwd=tmp_path)
    assert r.returncode != 0, r.stdout
    assert one_line_error(r.stderr), r.stderr
    assert "wrote" not in r.stdout
    if target == "frames":
        assert not out.exists()
    else:
        assert out.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def _wait_for(pred, timeout=60.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_sigterm_during_render_leaves_nothing(tmp_path, splat):
    out = tmp_path / "r.mp4"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", cli_code(["render", str(splat), "-o", str(out), "--num-frames",
                                                             "400", "--size", "64x96", "--device", "cpu"])],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: leftovers(tmp_path) != []), "the render never started writing"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert leftovers(tmp_path) == [] and not out.exists()


def _dead_pid() -> int:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(dead.stdout)


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    """kill -9 leaves a temporary; the next write into the folder removes it (not those of live processes)."""
    pid = _dead_pid()
    stale_file = tmp_path / f".scene.{pid}.abc123.tmp.ply"
    stale_dir = tmp_path / f".scene4d.{pid}.x_y9.tmp"
    live = tmp_path / f".other.{os.getpid()}.qqq.tmp.ply"
    stale_file.write_bytes(b"x" * 100)
    stale_dir.mkdir()
    (stale_dir / "t000.ply").write_bytes(b"x")
    live.write_bytes(b"y")
    foreign = tmp_path / ".notes.tmp"  # not our naming: kept
    foreign.write_text("keep")
    with atomic_path(tmp_path / "scene.ply") as tmp:
        tmp.write_bytes(b"new")
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and foreign.exists()
    assert (tmp_path / "scene.ply").read_bytes() == b"new"
    assert remove_stale_temps(tmp_path) == []


def test_interrupted_folder_replacement_is_recovered(tmp_path):
    """A crash between replace_dir's two renames leaves only .NAME.old: info or the next run restores it."""
    scene = tmp_path / "scene4d"
    from lyra.scene import DynamicScene

    DynamicScene(times=torch.tensor([0.0, 1.0]), gaussians=[make_scene(20), make_scene(20, 1)]).save(scene)
    # Simulate the crash: the old folder renamed aside, the new one not yet in place.
    os.replace(scene, tmp_path / ".scene4d.old")
    tmp = tmp_path / f".scene4d.{_dead_pid()}.abc.tmp"  # the new folder, complete or not, of the killed run
    tmp.mkdir()
    assert not scene.exists()
    code, stdout, stderr = run_cli(["info", str(scene)])
    assert code == 0, stderr
    assert "restored" in stderr and "times       2" in stdout
    assert scene.is_dir() and not (tmp_path / ".scene4d.old").exists()
    # The crash after both renames (old still there beside the new) is finished by the next replacement.
    os.replace(scene, tmp_path / ".scene4d.old")
    os.replace(tmp, scene)
    assert not recover_replaced_dir(scene) and not (tmp_path / ".scene4d.old").exists()
    tmp2 = make_temp_dir(scene)
    (tmp2 / "x").write_text("new")
    replace_dir(tmp2, scene)
    assert (scene / "x").read_text() == "new" and leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["file", "scene4d"])
def test_sigterm_removes_temporaries_of_file_and_folder_writes(tmp_path, kind):
    """SIGTERM in the middle of a write (convert: a file; a 4D scene: a folder) leaves no temporary."""
    code = f"""
import os, signal
from lyra.fileio import atomic_path, install_cleanup_on_sigterm, make_temp_dir
install_cleanup_on_sigterm()
if {kind!r} == "file":
    with atomic_path("out.spz") as tmp:
        tmp.write_bytes(b"partial")
        os.kill(os.getpid(), signal.SIGTERM)
else:
    tmp = make_temp_dir("scene4d")
    (tmp / "t000.ply").write_bytes(b"partial")
    os.kill(os.getpid(), signal.SIGTERM)
print("not reached")
"""
    r = run_limited(code, cwd=tmp_path)
    assert r.returncode == 128 + signal.SIGTERM and "not reached" not in r.stdout
    assert leftovers(tmp_path) == [] and list(tmp_path.iterdir()) == []
