"""lyra.inputs.load_video on real videos written on the fly (the packaged ffmpeg): timestamp resampling
(constant and variable frame rate), fitting, frame folders, and one-line errors for bad inputs."""

from __future__ import annotations

import itertools
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

import lyra.media as media
from lyra.errors import ConfigError, InputFileError
from lyra.inputs import fit_to_size, is_video_input, load_video, resample_by_timestamps
from lyra.media import ffmpeg_exe, write_video

W, H = 64, 48


def coded_frames(n: int, w: int = W, h: int = H) -> np.ndarray:
    """Flat frames whose red level encodes the frame number (10 + 8·i), robust to lossy coding."""
    a = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        a[i, ..., 0] = 10 + 8 * i
        a[i, ..., 1] = 128
        a[i, ..., 2] = 240 - 8 * i
    return a


def frame_ids(frames: torch.Tensor) -> list[int]:
    """The frame numbers that :func:`coded_frames` wrote, read back from ``[T, 3, H, W]`` in [0, 1]."""
    red = frames[:, 0].mean(dim=(1, 2)) * 255
    return [round((float(r) - 10) / 8) for r in red]


def ffmpeg_video(path, frames: np.ndarray, pts: list[float]) -> None:
    """Encode ``frames`` as H.264 with the given presentation times (seconds): variable frame rate when uneven."""
    n, h, w, _ = frames.shape
    expr = "+".join(f"eq(N\\,{i})*{p}" for i, p in enumerate(pts))
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                    "-r", "10", "-i", "pipe:0", "-vf", f"setpts=({expr})/TB", "-fps_mode", "vfr", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-video_track_timescale", "1000", str(path)],
                   input=frames.tobytes(), check=True)


@pytest.fixture(scope="module")
def cfr_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "cfr.mp4"
    write_video(coded_frames(30), path, fps=24.0)
    return path


VFR_PTS = [0.0, 0.1, 0.2, 0.3, 0.4, 1.0, 1.5, 2.0, 2.1, 2.2]


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "vfr.mp4"
    ffmpeg_video(path, coded_frames(len(VFR_PTS)), VFR_PTS)
    return path


# ------------------------------------------------------------------------------------------ resampling
def brute_force(pts: np.ndarray, k: int) -> float:
    targets = np.linspace(pts[0], pts[-1], k)
    return min(np.abs(pts[list(c)] - targets).sum() for c in itertools.combinations(range(len(pts)), k))


def test_resample_constant_rate_is_even_spacing():
    assert resample_by_timestamps(np.arange(9.0), 3).tolist() == [0, 4, 8]
    assert resample_by_timestamps(np.arange(30) / 24, 6).tolist() == [0, 6, 12, 17, 23, 29]
    assert resample_by_timestamps(np.arange(4.0), 3).tolist() == [0, 1, 3]  # 1.5 is a tie: the earlier frame
    assert resample_by_timestamps(np.arange(5.0), 5).tolist() == [0, 1, 2, 3, 4]
    assert resample_by_timestamps([3.0, 4.0], 1).tolist() == [0]


def test_resample_uses_time_not_frame_count():
    # Dense at the start, sparse later: by time the picks move to the sparse frames, unlike by frame count.
    idx = resample_by_timestamps(VFR_PTS, 5)
    assert idx.tolist() == [0, 4, 5, 6, 9]  # targets 0, 0.55, 1.1, 1.65, 2.2 s → 0, 0.4, 1.0, 1.5, 2.2 s
    assert idx.tolist() != np.round(np.linspace(0, 9, 5)).astype(int).tolist()


@pytest.mark.parametrize("seed", range(8))
def test_resample_distinct_and_optimal_when_nearest_collide(seed):
    rng = np.random.default_rng(seed)
    pts = np.cumsum(rng.choice([0.01, 0.01, 0.5], size=9))  # bursts and gaps: nearest frames collide
    for k in (3, 5, 7, 9):
        idx = resample_by_timestamps(pts, k)
        assert len(idx) == k and np.all(np.diff(idx) > 0) and idx[0] == 0 and idx[-1] == len(pts) - 1
        targets = np.linspace(pts[0], pts[-1], k)
        np.testing.assert_allclose(np.abs(pts[idx] - targets).sum(), brute_force(pts, k), atol=1e-9)


def test_resample_bad_arguments():
    with pytest.raises(ConfigError, match="cannot give 4"):
        resample_by_timestamps([0.0, 1.0, 2.0], 4)
    with pytest.raises(ConfigError, match="non-decreasing"):
        resample_by_timestamps([0.0, 2.0, 1.0], 2)
    with pytest.raises(ConfigError):
        resample_by_timestamps([0.0, float("nan")], 2)


# ------------------------------------------------------------------------------------------ videos
def test_constant_rate_mp4(cfr_video):
    frames, times, info = load_video(cfr_video, 6, size=(32, 48))
    assert frames.shape == (6, 3, 32, 48) and frames.dtype == torch.float32
    assert 0.0 <= float(frames.min()) and float(frames.max()) <= 1.0
    assert frame_ids(frames) == [0, 6, 12, 17, 23, 29] == info["indices"]
    torch.testing.assert_close(times, torch.tensor([0, 6, 12, 17, 23, 29]) / 29.0, atol=1e-4, rtol=0)
    assert info["source_frames"] == 30 and info["source_size"] == [W, H] and info["codec"] == "h264"
    assert info["timing"] == "timestamps" and not info["variable_frame_rate"]
    assert info["fps"] == pytest.approx(24.0) and info["duration_s"] == pytest.approx(29 / 24, abs=1e-3)
    assert "centre-crop" in info["fit"]  # 64x48 → aspect 3:2: the top and bottom are cropped


def test_fitting_matches_the_image_path(cfr_video):
    full, _, info = load_video(cfr_video, 2)  # size None: frames as decoded
    assert full.shape == (2, 3, H, W) and info["fit"] is None
    fitted, _, _ = load_video(cfr_video, 2, size=(16, 32))
    for k in range(2):
        torch.testing.assert_close(fitted[k], fit_to_size(full[k], 16, 32)[0])


def test_variable_frame_rate_by_timestamps(vfr_video):
    frames, times, info = load_video(vfr_video, 5)
    assert frame_ids(frames) == [0, 4, 5, 6, 9] == info["indices"]
    torch.testing.assert_close(times, torch.tensor([0.0, 0.4, 1.0, 1.5, 2.2]) / 2.2, atol=1e-5, rtol=0)
    assert info["variable_frame_rate"] and info["source_times_s"] == pytest.approx([0.0, 0.4, 1.0, 1.5, 2.2])
    # Eight of ten: the nearest frames collide in the gap, yet eight distinct frames come back in order.
    frames8, times8, _ = load_video(vfr_video, 8)
    ids = frame_ids(frames8)
    assert ids == sorted(set(ids)) and len(ids) == 8 and torch.all(times8[1:] > times8[:-1])


def test_window_start_and_duration(cfr_video):
    frames, times, info = load_video(cfr_video, 3, start=0.5, duration=0.25)  # frames 12..18 (0.5 s .. 0.75 s)
    assert frame_ids(frames) == [12, 15, 18] and times.tolist() == pytest.approx([0.0, 0.5, 1.0], abs=1e-4)
    with pytest.raises(InputFileError, match=r"between 0.5 s and 0.55 s; 3 are needed"):
        load_video(cfr_video, 3, start=0.5, duration=0.05)
    with pytest.raises(InputFileError, match="no frame after start=5"):
        load_video(cfr_video, 3, start=5.0)
    with pytest.raises(ConfigError):
        load_video(cfr_video, 3, start=-1.0)


def test_rotation_metadata_is_applied(tmp_path, vfr_video):
    rotated = tmp_path / "rot.mp4"
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-display_rotation", "90", "-i", str(vfr_video),
                    "-c", "copy", str(rotated)], check=True)
    frames, _, info = load_video(rotated, 2)
    assert frames.shape == (2, 3, W, H) and info["source_size"] == [H, W]  # shown upright: 48 wide, 64 tall


def test_gif_video(tmp_path):
    write_video(coded_frames(6), tmp_path / "a.gif", fps=10)
    frames, times, info = load_video(tmp_path / "a.gif", 3)
    assert frame_ids(frames) == [0, 2, 5] and info["codec"] == "gif"  # target 0.25 s is a tie → 0.2 s (earlier)
    assert times[0] == 0 and times[-1] == 1


def test_huge_frames_refused_or_decoded_small(cfr_video, monkeypatch):
    monkeypatch.setattr(media, "MAX_VIDEO_SIDE", 60)
    with pytest.raises(InputFileError, match=r"64x48 frames are larger than lyra decodes \(60 pixels"):
        load_video(cfr_video, 2)
    monkeypatch.undo()
    full, _, _ = load_video(cfr_video, 2, size=(16, 16))
    monkeypatch.setattr(media, "MAX_DECODE_PIXELS", 32 * 24)  # the 64x48 frames are shrunk while decoding
    small, _, info = load_video(cfr_video, 2, size=(16, 16))
    assert info["decoded_size"] == [32, 24] and info["source_size"] == [W, H] and "decoded at 32x24" in info["fit"]
    assert small.shape == full.shape and (small - full).abs().max() < 0.05  # flat frames: same colours


def test_bad_videos_are_one_line_input_errors(tmp_path, cfr_video):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("not a video at all\n" * 50)
    data = cfr_video.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=0.5",
                    str(tmp_path / "sound.m4a")], check=True)
    (tmp_path / "nothing").mkdir()
    # Header first (faststart), then cut just after the start of the media data: the header reads, no frame decodes.
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:d=2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(tmp_path / "fs.mp4")],
                   check=True)
    data = (tmp_path / "fs.mp4").read_bytes()
    (tmp_path / "nodata.mp4").write_bytes(data[:data.index(b"mdat") + 16])
    cases = {"empty.mp4": "empty", "notes.mp4": "not a video", "cut.mp4": "truncated",
             "nodata.mp4": "no frame of the h264 video could be decoded", "sound.m4a": "no video stream",
             "missing.mp4": "no such file", "nothing": "folder without image frames"}
    for name, words in cases.items():
        with pytest.raises(InputFileError) as e:
            load_video(tmp_path / name, 4)
        msg = str(e.value)
        assert words in msg and name in msg and "\n" not in msg, msg


def test_too_few_frames_says_how_many(cfr_video):
    with pytest.raises(InputFileError, match=r"cfr.mp4: 30 frames; 121 are needed \(give a longer video\)"):
        load_video(cfr_video, 121)
    with pytest.raises(ConfigError):
        load_video(cfr_video, 1)


# ------------------------------------------------------------------------------------------ frame folders
def test_folder_of_numbered_frames(tmp_path):
    a = coded_frames(12)
    for i in range(12):  # f1.png … f12.png: natural order, not f1, f10, f11, f12, f2 …
        Image.fromarray(a[i]).save(tmp_path / f"f{i + 1}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    frames, times, info = load_video(tmp_path, 4, size=(24, 32))
    assert frames.shape == (4, 3, 24, 32) and frame_ids(frames) == [0, 4, 7, 11]
    assert info["kind"] == "frames" and info["files"] == ["f1.png", "f5.png", "f8.png", "f12.png"]
    torch.testing.assert_close(times, torch.tensor([0, 4, 7, 11]) / 11.0)
    with pytest.raises(InputFileError, match="12 image frames; 13 are needed"):
        load_video(tmp_path, 13)
    Image.fromarray(coded_frames(1, 32, 32)[0]).save(tmp_path / "f12.png")
    with pytest.raises(InputFileError, match="all frames must have one size"):
        load_video(tmp_path, 4)


def test_is_video_input(tmp_path, cfr_video):
    still, anim = tmp_path / "still.gif", tmp_path / "anim.gif"
    Image.fromarray(coded_frames(1)[0]).save(still)
    write_video(coded_frames(3), anim, fps=5)
    Image.fromarray(coded_frames(1)[0]).save(tmp_path / "p.png")
    (tmp_path / "clip.bin").write_bytes(cfr_video.read_bytes())  # an MP4 by content
    (tmp_path / "photo.bin").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)  # a HEIC photo
    assert is_video_input(cfr_video) and is_video_input(anim) and is_video_input(tmp_path / "clip.bin")
    assert is_video_input(tmp_path)  # a folder of frames
    assert not is_video_input(still) and not is_video_input(tmp_path / "p.png")
    assert not is_video_input(tmp_path / "photo.bin") and not is_video_input(tmp_path / "missing.png")
