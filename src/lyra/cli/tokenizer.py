"""``lyra tokenizer roundtrip VIDEO [-o out.mp4]`` (encode → decode → PSNR / SSIM / ΔE00),
``lyra tokenizer eval`` (held-out test worlds and saturated colour patches) and ``lyra tokenizer train ...``."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lyra.cli._common import add_device_argument, pick_device
from lyra.errors import ConfigError, FormatError, InputFileError
from lyra.fileio import check_input_file
from lyra.tokenizer.presets import PRESETS

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokenizer",
        help="video tokenizer: round trip a video, evaluate on held-out worlds, or train the tokenizer",
        description="The Cosmos CV8x8x8-style video tokenizer (8× time, 8×8 space, 16 channels).",
    )
    tsub = p.add_subparsers(dest="tokenizer_command", metavar="ACTION")
    r = tsub.add_parser(
        "roundtrip",
        help="encode and decode a video, print the reconstruction PSNR / SSIM / ΔE00",
        description="Encode a video (mp4/mov/mkv/gif, or a folder of PNG/JPEG frames) to latents and decode it "
        "back; print the reconstruction PSNR, SSIM (first frame and the rest) and the mean CIEDE2000 colour "
        "difference ΔE00 (about 1: just noticeable; over 3: visible side by side). The video needs 1 + 8k "
        "frames (1, 9, 17, ..., 121): --trim drops the frames past the last such count. Sizes that are not "
        "multiples of 8 are padded for the tokenizer and cropped back.",
        epilog="Examples:\n  lyra tokenizer roundtrip clip.mp4\n  lyra tokenizer roundtrip frames/ --trim -o rec.mp4\n"
        "  lyra tokenizer roundtrip clip.mp4 --preset official --weights ~/cosmos-cv8x8x8",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("video", help="a video file or a folder of image frames")
    r.add_argument("-o", "--output", help="write the reconstruction (video file: .mp4/.mov/.mkv/.gif)")
    r.add_argument("--preset", default="tiny", choices=tuple(PRESETS), help="tokenizer (default tiny)")
    r.add_argument("--weights", default=None, metavar="DIR",
                   help="a diffusers-format tokenizer folder (default: the preset's weights)")
    r.add_argument("--trim", action="store_true", help="drop frames past the largest 1 + 8k count")
    r.add_argument("--max-frames", type=int, default=None, help="use at most this many leading frames")
    r.add_argument("--fps", type=float, default=None, help="frame rate of -o (default: the input's, else 24)")
    add_device_argument(r)
    r.set_defaults(func=run_roundtrip)

    e = tsub.add_parser(
        "eval",
        help="PSNR / SSIM / ΔE00 on the held-out test worlds and on saturated colour patches",
        description="Round-trip the held-out test videos (six trajectories of each of the first --worlds test worlds "
        "of "
        "lyra.world, 17 × 176 × 320; 16 worlds = the 96 videos of the training records) and four videos of "
        "saturated colour patches (12 hues at full saturation, dark primaries and three reds; ΔE00 inside the "
        "patches). Prints PSNR, SSIM and the mean CIEDE2000 ΔE00 of each set; --json writes them with the "
        "per-frame values. On a CPU this is slow: rendering the 16 worlds alone took 21 minutes on a loaded 2-core "
        "machine (use --worlds 4 for a quick look, or a GPU).",
        epilog="Examples:\n  lyra tokenizer eval\n  lyra tokenizer eval --preset tiny_block --json tok_block.json\n"
        "  lyra tokenizer eval --weights runs/tok/export --worlds 4",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--preset", default="tiny", choices=tuple(PRESETS), help="tokenizer (default tiny)")
    e.add_argument("--weights", default=None, metavar="DIR",
                   help="a diffusers-format tokenizer folder (default: the preset's weights)")
    e.add_argument("--worlds", type=int, default=16, help="held-out test worlds, 6 videos each (default 16)")
    e.add_argument("--no-patches", action="store_true", help="skip the saturated colour patches")
    e.add_argument("--patch-video", default="17x176x320", metavar="TxHxW",
                   help="frames and size of the colour-patch videos (default 17x176x320, the working size)")
    e.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON (atomically)")
    add_device_argument(e)
    e.set_defaults(func=run_eval)

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


def valid_frame_count(n: int, temporal_compression: int = 8) -> int:
    """The largest ``1 + c·k`` that is ``≤ n`` (``c``: the tokenizer's temporal compression, 8 for CV8x8x8)."""
    c = temporal_compression
    return 1 + (n - 1) // c * c


def run_roundtrip(args: argparse.Namespace) -> int:
    from lyra.eval.metrics import delta_e2000, psnr, ssim
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
    device = pick_device(args.device)
    tok = Tokenizer.from_preset(args.preset, path=args.weights, device=device, max_batch=1)
    ct, cs = tok.temporal_compression, tok.spatial_compression
    n = frames.shape[0]
    if (n - 1) % ct:
        keep = valid_frame_count(n, ct)
        if not args.trim:
            raise ConfigError(f"{args.video}: {n} frames; the tokenizer needs 1 + {ct}k frames "
                              f"(1, {1 + ct}, {1 + 2 * ct}, ...): pass --trim to use the first {keep}")
        frames = frames[:keep]
    h, w = frames.shape[1:3]
    if h % cs or w % cs:
        print(f"note: {h}×{w} is not a multiple of {cs}; padded for the tokenizer, cropped back")
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
    de = delta_e2000(rec[0], video[0])
    print(f"{args.video}: {frames.shape[0]} frames {h}×{w} → latents {tuple(latents.shape[1:])}; "
          f"encode {t1 - t0:.2f} s, decode {t2 - t1:.2f} s ({device})")
    rest = f", other frames {float(p[1:].mean()):.2f} dB" if p.numel() > 1 else ""
    print(f"PSNR {float(p.mean()):.2f} dB (first frame {float(p[0]):.2f} dB{rest}); SSIM {float(s.mean()):.4f}; "
          f"ΔE00 {float(de.mean()):.2f}")
    if args.output:
        from lyra.media import write_video

        write_video((f for f in rec[0].permute(0, 2, 3, 1).cpu()), args.output, fps=args.fps or fps or 24.0)
        print(f"wrote {args.output}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from lyra.tokenizer import Tokenizer
    from lyra.train.recipes.tokenizer import eval_videos, evaluate_colour_patches, evaluate_reconstruction

    if args.worlds < 0:
        raise ConfigError("--worlds must be >= 0")
    if args.worlds == 0 and args.no_patches:
        raise ConfigError("nothing to evaluate: --worlds 0 and --no-patches")
    out = Path(args.json) if args.json else None
    if out is not None and not out.parent.is_dir():
        raise ConfigError(f"--json {out}: folder {out.parent} does not exist")
    device = pick_device(args.device)
    tok = Tokenizer.from_preset(args.preset, path=args.weights, device=device, max_batch=2)
    result: dict = {"preset": args.preset, "weights": str(args.weights) if args.weights else None,
                    "parameters": tok.num_parameters(), "device": str(device)}
    t0 = time.perf_counter()
    if args.worlds:
        try:
            import lyra.world  # noqa: F401
        except ImportError as e:  # pragma: no cover - lyra.world is part of lyra
            raise ConfigError(f"the held-out videos need lyra.world ({e})") from e
        vids, desc = eval_videos("world", args.worlds, 17, 176, 320, str(device), "tiny")
        r = evaluate_reconstruction(tok, vids)
        result["test"] = {**desc, **r}
        print(f"held-out test worlds ({r['videos']} videos, 17×176×320): PSNR {r['psnr']:.2f} dB "
              f"(first frame {r['psnr_first_frame']:.2f}, others {r['psnr_other_frames']:.2f}), "
              f"SSIM {r['ssim']:.4f}, ΔE00 {r['delta_e2000']:.2f}")
    if not args.no_patches:
        c = evaluate_colour_patches(tok, *_patch_video(args.patch_video))
        result["colour_patches"] = c
        print(f"saturated colour patches ({c['videos']} videos): ΔE00 {c['delta_e2000']:.2f} inside the patches "
              f"(PSNR {c['psnr']:.2f} dB, SSIM {c['ssim']:.4f})")
    result["seconds"] = round(time.perf_counter() - t0, 1)
    if out is not None:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, out)
        print(f"wrote {out}")
    return 0


def _patch_video(text: str) -> tuple[int, int, int]:
    try:
        t, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--patch-video must look like TxHxW (e.g. 17x176x320), got {text!r}") from None
    if t < 1 or h < 96 or w < 192:
        raise ConfigError(f"--patch-video {text}: needs at least 1 frame of 96×192 pixels")
    return t, h, w


def run_train(args: argparse.Namespace) -> int:
    import sys

    from lyra.train.recipes.tokenizer import run

    return run(args, command="lyra " + " ".join(sys.argv[1:]))
