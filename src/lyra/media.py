"""Videos and image sequences through the ffmpeg packaged with ``imageio-ffmpeg`` (no system ffmpeg needed).

Writing: :func:`write_video`, :func:`write_image`, :func:`write_frames`.

Reading (what :func:`lyra.inputs.load_video` builds on), in three ffmpeg runs so that memory never holds more than
one full-resolution frame:

1. :func:`probe_video` reads the header (codec, size, rate; refuses frames above :data:`MAX_VIDEO_SIDE`);
2. :func:`video_timestamps` decodes every frame once and records its presentation timestamp (``showinfo``);
3. :func:`read_video_frames` decodes again and streams only the chosen frames as RGB, shrunk while decoding when a
   frame has more than :data:`MAX_DECODE_PIXELS` pixels.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lyra.errors import ConfigError, InputFileError, OutputPathError
from lyra.fileio import atomic_dir, atomic_path, check_input_file

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".gif")
#: Highest frame rate written.
MAX_FPS = 240.0


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float image(s) in [0, 1] ``[..., H, W, 3]`` → uint8 numpy (clamped, rounded)."""
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu().numpy()
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _close(frames: object) -> None:
    """Close a frame generator early (its progress bar ends its line before an error is printed)."""
    close = getattr(frames, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


def _write_error(path: Path, err: OSError | str) -> OutputPathError:
    detail = err if isinstance(err, str) else (err.strerror or str(err))
    return OutputPathError(f"{path}: cannot write ({detail}); nothing was written, an existing file is unchanged")


def _ffmpeg_encode(frames: Iterable[np.ndarray | torch.Tensor], tmp: Path, final: Path, fps: float) -> int:
    """Encode frames to ``tmp`` (H.264, yuv420p, crf 10) through the packaged ffmpeg; check its exit status.

    Returns the number of frames written. Raises OutputPathError when ffmpeg fails (e.g. a full disk), naming
    ffmpeg's reason.
    """
    from fractions import Fraction

    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ConfigError(f"{final}: no frames to write")
    first = to_uint8(first)
    h, w = first.shape[:2]
    pad_w, pad_h = w + w % 2, h + h % 2  # yuv420p needs even sides
    rate = Fraction(fps).limit_denominator(1001)
    cmd = [ffmpeg_exe(), "-y", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "rawvideo",
           "-vcodec", "rawvideo", "-s", f"{w}x{h}", "-pix_fmt", "rgb24", "-r", str(rate), "-i", "-",
           "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-crf", "10"]
    if (pad_w, pad_h) != (w, h):
        cmd += ["-vf", f"scale={pad_w}:{pad_h}"]
    cmd.append(str(tmp))
    count = 0
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        assert proc.stdin is not None
        broken = False
        try:
            for frame in _chain(first, it):
                arr = to_uint8(frame)
                if arr.shape != first.shape:
                    raise ConfigError(f"{final}: frame {count} is {arr.shape}, the first was {first.shape}")
                try:
                    proc.stdin.write(np.ascontiguousarray(arr).tobytes())
                except BrokenPipeError:  # ffmpeg quit: its exit status and log say why
                    broken = True
                    break
                count += 1
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if code != 0 or broken:
            log.seek(0)
            reason = _ffmpeg_error(log.read().decode("utf-8", "replace"))
            raise _write_error(final, f"ffmpeg exited with status {code}: {reason}")
    return count


def _chain(first: np.ndarray, rest: Iterator[np.ndarray | torch.Tensor]) -> Iterator[np.ndarray | torch.Tensor]:
    yield first
    yield from rest


def write_video(frames: Iterable[np.ndarray | torch.Tensor], path: str | os.PathLike, fps: float = 24.0) -> Path:
    """Write frames ``[H, W, 3]`` (float [0,1] or uint8) to a video file, atomically.

    The format follows the extension (``.mp4``/``.mov``/``.mkv`` as H.264, ``.gif``). Frames are
    consumed lazily, so a generator of rendered frames streams to disk. The encoder's exit status is checked:
    a failed write (full disk, quota) raises :class:`OutputPathError` and leaves an existing file unchanged.
    """
    p = Path(path)
    if p.suffix.lower() not in VIDEO_EXTENSIONS:
        raise OutputPathError(f"{p}: unknown video extension; use one of {', '.join(VIDEO_EXTENSIONS)}")
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise ConfigError(f"the frame rate must be a number in (0, {MAX_FPS:g}] frames per second, got {fps}")
    try:
        with atomic_path(p) as tmp:
            if p.suffix.lower() == ".gif":  # Pillow (a GIF is assembled in memory whatever the writer)
                images = [Image.fromarray(to_uint8(frame)) for frame in frames]
                if not images:
                    raise ConfigError(f"{p}: no frames to write")
                images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                               duration=1000.0 / fps, loop=0)
            else:
                _ffmpeg_encode(frames, tmp, p, fps)
    except OSError as e:
        _close(frames)
        raise _write_error(p, e) from None
    except BaseException:
        _close(frames)
        raise
    return p


def write_image(image: np.ndarray | torch.Tensor, path: str | os.PathLike) -> Path:
    """Write one image ``[H, W, 3]`` (float [0,1] or uint8) atomically; format from the extension."""
    p = Path(path)
    try:
        with atomic_path(p) as tmp:
            Image.fromarray(to_uint8(image)).save(tmp, format=Image.registered_extensions().get(p.suffix.lower()))
    except OSError as e:
        raise _write_error(p, e) from None
    return p


def write_frames(frames: Iterable[np.ndarray | torch.Tensor], folder: str | os.PathLike,
                 pattern: str = "frame_{:05d}.png") -> Path:
    """Write frames as numbered PNGs into a new folder (created atomically: all frames or nothing)."""
    try:
        with atomic_dir(folder) as tmp:
            for k, frame in enumerate(frames):
                Image.fromarray(to_uint8(frame)).save(tmp / pattern.format(k))
    except OSError as e:
        _close(frames)
        raise _write_error(Path(folder), e) from None
    except BaseException:
        _close(frames)
        raise
    return Path(folder)


# ------------------------------------------------------------------------------------------------ reading videos
#: Video file extensions ``lyra`` reads (anything the packaged ffmpeg decodes is tried; these are recognised by name).
READ_VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".ts", ".mts",
                         ".m2ts", ".wmv", ".flv", ".3gp", ".ogv")
#: Largest frame side decoded at all: above it a video is refused before any frame is decoded.
MAX_VIDEO_SIDE = 16384
#: Frames with more pixels than this (8.8 MP, DCI 4K) are shrunk by ffmpeg while decoding (area filter, aspect kept),
#: so memory stays bounded by about one such frame whatever the video's resolution.
MAX_DECODE_PIXELS = 4096 * 2160


@dataclass(frozen=True)
class VideoProbe:
    """What the container header says about a video's first (non-cover-art) video stream.

    ``width × height`` is the coded size (before any rotation metadata is applied); ``fps`` is the
    header's average rate (``None`` if absent); ``duration`` in seconds (``None`` if absent);
    ``rotation`` the display-matrix rotation in degrees (ffmpeg applies it while decoding).
    """

    path: Path
    stream: str
    codec: str
    width: int
    height: int
    fps: float | None
    duration: float | None
    rotation: float


@dataclass(frozen=True)
class VideoTimestamps:
    """Every decoded frame of a video, in presentation order.

    ``pts``: presentation time of each frame in seconds ``[N]`` (``nan`` where the stream has none);
    ``width × height``: the decoded frame size (rotation applied).
    """

    pts: np.ndarray
    width: int
    height: int


def ffmpeg_exe() -> str:
    """The ffmpeg binary packaged with ``imageio-ffmpeg`` (``$IMAGEIO_FFMPEG_EXE`` overrides it)."""
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - a dependency of lyra
        raise ConfigError("reading videos needs the 'imageio-ffmpeg' package: pip install imageio-ffmpeg") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


_FFMPEG_NOISE = ("conversion failed", "task finished", "terminating thread", "nothing was written",
                 "could not open encoder", "error while filtering", "at least one output file")


def _ffmpeg_error(stderr: str) -> str:
    """The most telling line of ffmpeg's stderr: one naming the cause (decoder, invalid data, ...), else the last
    error-looking line that is not ffmpeg's generic aftermath."""
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", ln.strip()) for ln in stderr.splitlines() if ln.strip()]
    lines = [re.sub(r"^Error opening input files?( [^:]*)?:\s*", "", ln) for ln in lines]
    lines = [ln for ln in lines if ln and not any(k in ln.lower() for k in _FFMPEG_NOISE)]
    causes = ("decoder", "invalid data", "not found", "unsupported", "moov", "truncat", "corrupt")
    for keys in (causes, ("error", "invalid", "could not", "failed")):
        for ln in reversed(lines):
            if any(k in ln.lower() for k in keys):
                return ln[:200]
    return lines[-1][:200] if lines else "ffmpeg failed"


def probe_video(path: str | os.PathLike) -> VideoProbe:
    """Read a video's header with ffmpeg (no frame is decoded).

    Raises:
        InputFileError: missing, empty or a directory; not a media file ffmpeg can open; no video stream; a frame
            side above :data:`MAX_VIDEO_SIDE`.
    """
    p = check_input_file(path)
    r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p)], capture_output=True, text=True,
                       errors="replace", check=False)
    err = r.stderr
    streams = [ln for ln in err.splitlines() if re.search(r"Stream #\d+:\d+.*: Video: ", ln)
               and "(attached pic)" not in ln]
    if not streams:
        if re.search(r"Stream #\d+:\d+", err):
            raise InputFileError(f"{p}: the file has no video stream (audio only?); give a video file")
        raise InputFileError(f"{p}: not a video ffmpeg can read ({_ffmpeg_error(err)}; truncated, or not a video?)")
    line = streams[0]
    stream = re.search(r"Stream #(\d+:\d+)", line).group(1)  # type: ignore[union-attr]
    codec = re.search(r"Video: (\w+)", line).group(1)  # type: ignore[union-attr]
    size = re.search(r"[ ,](\d+)x(\d+)(?=[ ,\[]|$)", line)
    if size is None:
        raise InputFileError(f"{p}: the video stream has no frame size (corrupt header?)")
    width, height = int(size.group(1)), int(size.group(2))
    if width <= 0 or height <= 0:
        raise InputFileError(f"{p}: the video stream has an empty frame size {width}x{height}")
    if max(width, height) > MAX_VIDEO_SIDE:
        raise InputFileError(f"{p}: {width}x{height} frames are larger than lyra decodes ({MAX_VIDEO_SIDE} pixels a "
                             "side); downscale the video first (e.g. ffmpeg -vf scale=-2:2160)")
    fps_m = re.search(r"([\d.]+)(k?) fps", line)
    fps = float(fps_m.group(1)) * (1000.0 if fps_m.group(2) else 1.0) if fps_m else None
    dur_m = re.search(r"Duration: (\d+):(\d+):([\d.]+)", err)
    duration = int(dur_m.group(1)) * 3600 + int(dur_m.group(2)) * 60 + float(dur_m.group(3)) if dur_m else None
    rot_m = re.search(r"rotation of (-?[\d.]+) degrees", err)
    return VideoProbe(p, stream, codec, width, height, fps or None, duration, float(rot_m.group(1)) if rot_m else 0.0)


def _run_logged(cmd: list[str]) -> tuple[int, str]:
    """Run ffmpeg with stdout discarded and stderr to a temporary file (no pipe to fill); (return code, stderr)."""
    with tempfile.TemporaryFile() as log:
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=log, check=False)
        log.seek(0)
        return r.returncode, log.read().decode("utf-8", "replace")


_SHOWINFO = re.compile(r"\bn:\s*(\d+)\s+pts:\s*(-?\d+|NOPTS)\s+pts_time:\s*(\S+).*?\bs:(\d+)x(\d+)")
_TIME_BASE = re.compile(r"config in time_base:\s*(\d+)/(\d+)")


def _parse_showinfo(stderr: str) -> tuple[list[int], list[float], tuple[int, int] | None]:
    """Frame numbers, presentation times (s; nan when absent) and the first frame size from showinfo lines."""
    tb_m = _TIME_BASE.search(stderr)
    tb = int(tb_m.group(1)) / int(tb_m.group(2)) if tb_m and int(tb_m.group(2)) else None
    ns, pts, size = [], [], None
    for m in _SHOWINFO.finditer(stderr):
        ns.append(int(m.group(1)))
        if m.group(2) == "NOPTS":
            pts.append(math.nan)
        elif tb is not None:
            pts.append(int(m.group(2)) * tb)
        else:
            try:
                pts.append(float(m.group(3)))
            except ValueError:
                pts.append(math.nan)
        if size is None:
            size = (int(m.group(4)), int(m.group(5)))
    return ns, pts, size


def video_timestamps(probe: VideoProbe) -> VideoTimestamps:
    """Decode every frame once (ffmpeg ``showinfo``, frames discarded) and list their presentation times.

    Frames are taken as decoded (``-fps_mode passthrough``: none duplicated or dropped to reach a constant rate), so a
    variable-frame-rate video gives its true, uneven timestamps.

    Raises:
        InputFileError: the stream cannot be decoded (unknown codec, corrupt data) or holds no frame.
    """
    code, err = _run_logged([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(probe.path), "-map",
                             probe.stream, "-an", "-sn", "-dn",
                             "-vf", "showinfo", "-fps_mode", "passthrough", "-f", "null", "-"])
    ns, pts, size = _parse_showinfo(err)
    if code != 0 and not ns:
        raise InputFileError(f"{probe.path}: no frame of the {probe.codec} video could be decoded (truncated or "
                             f"corrupt?; ffmpeg: {_ffmpeg_error(err)})")
    if not ns or size is None:
        raise InputFileError(f"{probe.path}: no frame could be decoded (empty or truncated video?)")
    return VideoTimestamps(np.asarray(pts, dtype=np.float64), size[0], size[1])


def decode_size(width: int, height: int, max_pixels: int | None = None) -> tuple[int, int]:
    """The size frames are decoded at: unchanged up to ``max_pixels`` (default :data:`MAX_DECODE_PIXELS`), else
    shrunk with the aspect kept to at most that many pixels (even sides, as ffmpeg's scalers prefer)."""
    limit = MAX_DECODE_PIXELS if max_pixels is None else max_pixels
    if width * height <= limit:
        return width, height
    s = math.sqrt(limit / (width * height))
    return max(2, int(width * s) // 2 * 2), max(2, int(height * s) // 2 * 2)


def read_video_frames(probe: VideoProbe, indices: Sequence[int], size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Decode the frames numbered ``indices`` (strictly increasing, in the decode order of :func:`video_timestamps`)
    and yield them one at a time as uint8 ``[height, width, 3]`` RGB, scaled by ffmpeg to ``size = (width, height)``
    (area filter; pass the decoded size to keep the pixels as they are). At most one frame is held in memory.

    Raises:
        InputFileError: ffmpeg fails or yields fewer frames than asked for.
    """
    idx = [int(i) for i in indices]
    if any(b <= a for a, b in zip(idx, idx[1:], strict=False)) or (idx and idx[0] < 0):
        raise ConfigError(f"frame indices must be strictly increasing and non-negative, got {idx[:8]}...")
    if not idx:
        return
    w, h = size
    select = "+".join(f"eq(n\\,{i})" for i in idx)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(probe.path), "-map",
           probe.stream, "-an", "-sn", "-dn",
           "-vf", f"select='{select}',scale={w}:{h}:flags=area", "-fps_mode", "passthrough",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    nbytes = w * h * 3
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        got = 0
        try:
            assert proc.stdout is not None
            while got < len(idx):
                buf = proc.stdout.read(nbytes)
                if len(buf) < nbytes:
                    break
                got += 1
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if got < len(idx):
            log.seek(0)
            detail = _ffmpeg_error(log.read().decode("utf-8", "replace"))
            raise InputFileError(f"{probe.path}: decoded {got} of the {len(idx)} frames asked for ({detail})")
