"""``lyra tokenizer roundtrip VIDEO [-o out.mp4]`` (encode → decode → PSNR) and ``lyra tokenizer train ...``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from lyra.cli._common import add_device_argument, pick_device
from lyra.errors import ConfigError, FormatError, InputFileError
from lyra.fileio import check_input_file

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokenizer",
        help="video tokenizer: round trip a video, or train the tokenizer",
        description="The Cosmos CV8x8x8-style video tokenizer (8× time, 8×8 space, 16 channels).",
    )
    tsub = p.add_subparsers(dest="tokenizer_command", metavar="ACTION")
    r = tsub.add_parser(
        "roundtrip",
        help="encode and decode a video, print the reconstruction PSNR / SSIM",
        description="Encode a video (mp4/mov/mkv/gif, or a folder of PNG/JPEG frames) to latents and decode it "
        "back; print the reconstruction PSNR and SSIM (first frame and the rest). The video needs 1 + 8k "
        "frames (1, 9, 17, ..., 121): --trim drops the frames past the last such count. Sizes that are not "
        "multiples of 8 are padded for the tokenizer and cropped back.",
        epilog="Examples:\n  lyra tokenizer roundtrip clip.mp4\n  lyra tokenizer roundtrip frames/ --trim -o rec.mp4\n"
        "  lyra tokenizer roundtrip clip.mp4 --preset official --weights ~/cosmos-cv8x8x8",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("video", help="a video file or a folder of image frames")
    r.add_argument("-o", "--output", help="write the reconstruction (video file: .mp4/.mov/.mkv/.gif)")
    r.add_argument("--preset", default="tiny", choices=("tiny", "official"), help="tokenizer (default tiny)")
    r.add_argument("--weights", default=None, metavar="DIR",
                   help="a diffusers-format tokenizer folder (default: the preset's weights)")
    r.add_argument("--trim", action="store_true", help="drop frames past the largest 1 + 8k count")
    r.add_argument("--max-frames", type=int, default=None, help="use at most this many leading frames")
    r.add_argument("--fps", type=float, default=None, help="frame rate of -o (default: the input's, else 24)")
    add_device_argument(r)
    r.set_defaults(func=run_roundtrip)

    from lyra.train.recipes.tokenizer import DESCRIPTION, add_arguments

    t = tsub.add_parser("train", help="train the tokenizer (as python -m lyra.train.recipes.tokenizer)",
                        description=DESCRIPTION)
    add_arguments(t)
    t.set_defaults(func=run_train)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def read_video(path: str | Path) -> tuple[np.ndarray, float | None]:
    """Frames ``[T, H, W, 3]`` uint8 and the frame rate (None if unknown) of a video file or frame folder."""
    import imageio.v2 as imageio

    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise InputFileError(f"{p}: folder holds no image frames ({', '.join(IMAGE_EXTENSIONS)})")
        frames = []
        for f in files:
            try:
                frames.append(_rgb(np.asarray(imageio.imread(f)), f))
            except (OSError, ValueError) as e:
                raise InputFileError(f"{f}: unreadable image ({e})") from e
        shapes = {fr.shape for fr in frames}
        if len(shapes) > 1:
            raise FormatError(f"{p}: frames differ in size ({', '.join(str(s[:2]) for s in sorted(shapes))})")
        return np.stack(frames), None
    check_input_file(p)
    try:
        reader = imageio.get_reader(p)
        fps = reader.get_meta_data().get("fps")
        frames = [_rgb(np.asarray(fr), p) for fr in reader]
        reader.close()
    except (OSError, ValueError, RuntimeError) as e:
        raise InputFileError(f"{p}: cannot read it as a video ({str(e).splitlines()[0] if str(e) else e})") from e
    if not frames:
        raise FormatError(f"{p}: the video has no frames")
    return np.stack(frames), (float(fps) if fps else None)


def _rgb(a: np.ndarray, src: Path) -> np.ndarray:
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise FormatError(f"{src}: expected RGB frames, got an array of shape {a.shape}")
    a = a[..., :3]
    if a.dtype != np.uint8:
        a = np.clip(a.astype(np.float64) / (np.iinfo(a.dtype).max if a.dtype.kind in "ui" else 1.0), 0, 1)
        a = (a * 255 + 0.5).astype(np.uint8)
    return a


def valid_frame_count(n: int) -> int:
    """The largest ``1 + 8k`` that is ``≤ n``."""
    return 1 + (n - 1) // 8 * 8


def run_roundtrip(args: argparse.Namespace) -> int:
    from lyra.eval.metrics import psnr, ssim
    from lyra.tokenizer import Tokenizer

    if args.output:
        from lyra.media import VIDEO_EXTENSIONS

        if Path(args.output).suffix.lower() not in VIDEO_EXTENSIONS:
            raise ConfigError(f"-o {args.output}: use a video file name ({', '.join(VIDEO_EXTENSIONS)})")
    if args.fps is not None:
        from lyra.cli._common import check_fps

        check_fps(args.fps)
    frames, fps = read_video(args.video)
    if args.max_frames is not None:
        if args.max_frames < 1:
            raise ConfigError("--max-frames must be >= 1")
        frames = frames[: args.max_frames]
    n = frames.shape[0]
    if (n - 1) % 8:
        keep = valid_frame_count(n)
        if not args.trim:
            raise ConfigError(f"{args.video}: {n} frames; the tokenizer needs 1 + 8k frames (1, 9, 17, ..., 121): "
                              f"pass --trim to use the first {keep}")
        frames = frames[:keep]
    h, w = frames.shape[1:3]
    if h % 8 or w % 8:
        print(f"note: {h}×{w} is not a multiple of 8; padded for the tokenizer, cropped back")
    device = pick_device(args.device)
    tok = Tokenizer.from_preset(args.preset, path=args.weights, device=device, max_batch=1)
    video = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div(255.0)[None]  # [1,T,3,H,W]
    t0 = time.perf_counter()
    import warnings

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # padding is reported above
        latents = tok.encode(video)
        t1 = time.perf_counter()
        rec = tok.decode(latents)[..., :h, :w]
    t2 = time.perf_counter()
    p = psnr(rec[0], video[0]).clamp(max=100.0)
    s = ssim(rec[0], video[0])
    print(f"{args.video}: {frames.shape[0]} frames {h}×{w} → latents {tuple(latents.shape[1:])}; "
          f"encode {t1 - t0:.2f} s, decode {t2 - t1:.2f} s ({device})")
    rest = f", other frames {float(p[1:].mean()):.2f} dB" if p.numel() > 1 else ""
    print(f"PSNR {float(p.mean()):.2f} dB (first frame {float(p[0]):.2f} dB{rest}); SSIM {float(s.mean()):.4f}")
    if args.output:
        from lyra.media import write_video

        write_video((f for f in rec[0].permute(0, 2, 3, 1).cpu()), args.output, fps=args.fps or fps or 24.0)
        print(f"wrote {args.output}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    import sys

    from lyra.train.recipes.tokenizer import run

    return run(args, command="lyra " + " ".join(sys.argv[1:]))
