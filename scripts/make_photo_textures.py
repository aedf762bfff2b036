"""Rebuild the photo-texture bank of the photo-style worlds from panoramas in the viser package.

    python scripts/make_photo_textures.py [--viser DIR] [--out src/lyra/assets/photo_textures]

The bank is a row of ``SIZE``×``SIZE`` crops of real photographs (floors, ground, walls, facades, foliage,
rock) in one JPEG atlas (``atlas.jpg``, left to right in the order of ``bank.json``). The sources are the ten
Poly Haven HDRIs (CC0 1.0) that the PyPI package ``viser`` ships as 1k equirectangular "HDR JPEG" panoramas
(``viser/_assets/hdri/``); only their SDR base images are read here. Crops below the horizon are undistorted
horizontally by ``cos(latitude)`` (an equirectangular row is stretched by ``1 / cos(latitude)``). The product
reads only the shipped atlas (``lyra.world.photo_textures``); this script is how it was made.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from PIL import Image

SIZE = 128
#: (name, kind, source file, x, y, side) in pixels of the 1024×512 panorama: a crop of ``side`` rows whose
#: width is ``side / cos(latitude)`` around its centre row.
CROPS = (
    ("concrete_floor", "ground", "empty_warehouse_01_1k.jpg", 420, 380, 110),
    ("metal_wall", "wall", "empty_warehouse_01_1k.jpg", 20, 200, 60),
    ("forest_floor", "ground", "forest_slope_1k.jpg", 300, 395, 110),
    ("forest_trunks", "foliage", "forest_slope_1k.jpg", 560, 130, 100),
    ("dawn_rock", "rock", "kiara_1_dawn_1k.jpg", 480, 395, 110),
    ("wood_floor", "ground", "lebombo_1k.jpg", 300, 400, 100),
    ("red_pavement", "ground", "potsdamer_platz_1k.jpg", 60, 420, 90),
    ("asphalt", "ground", "potsdamer_platz_1k.jpg", 150, 300, 50),
    ("glass_facade", "facade", "potsdamer_platz_1k.jpg", 535, 130, 45),
    ("grass", "ground", "rooitou_park_1k.jpg", 400, 400, 110),
    ("parquet", "ground", "st_fagans_interior_1k.jpg", 680, 420, 70),
    ("green_wall", "wall", "st_fagans_interior_1k.jpg", 40, 200, 50),
    ("paving_stones", "ground", "venice_sunset_1k.jpg", 200, 400, 90),
    ("villa_facade", "facade", "venice_sunset_1k.jpg", 905, 165, 45),
    ("meadow", "ground", "rooitou_park_1k.jpg", 800, 300, 60),
    ("studio_floor", "ground", "studio_small_03_1k.jpg", 560, 400, 90),
)
#: Outdoor panoramas whose upper halves become image skies (high dynamic range through their gain maps).
SKIES = ("rooitou_park_1k.jpg", "kiara_1_dawn_1k.jpg", "venice_sunset_1k.jpg")  # potsdamer_platz: towers in its sky
NOTICE = """# Photo textures and skies of the photo-style worlds

`atlas.jpg` holds {n} crops ({size}x{size} pixels each, left to right in the order of `bank.json`) of
{count} equirectangular panoramas made by Poly Haven (https://polyhaven.com), licensed **CC0 1.0** (public domain
dedication: https://creativecommons.org/publicdomain/zero/1.0/). They were read from the copies the PyPI package
`viser` (Apache-2.0) ships in `viser/_assets/hdri/` (the presets of its `set_environment_map`; file names are
the Poly Haven asset names: {sources}). `sky_*.jpg` are the upper halves (the sky hemisphere) of {skies}, each
with its HDR gain map (`sky_*_gain.jpg`, Adobe/ISO gain-map metadata in `bank.json`). Made by
`scripts/make_photo_textures.py`.
"""


def _split_gain_map(data: bytes) -> tuple[bytes, bytes, dict]:
    """The SDR base JPEG, the gain-map JPEG and its ``hdrgm`` metadata of an "HDR JPEG" (MPF container)."""
    import re

    starts = [m.start() for m in re.finditer(rb"\xff\xd8\xff", data)]
    second = next(i for i in starts[1:] if b"hdrgm:GainMapMax" in data[i:i + 4096])
    keys = rb"hdrgm:(GainMapMin|GainMapMax|Gamma|OffsetSDR|OffsetHDR)=\"([^\"]*)\""
    meta = {k.decode(): float(v) for k, v in re.findall(keys, data[second:second + 4096])}
    return data[:second], data[second:], meta


def sky(src: Path, file: str, out: Path, quality: int) -> dict:
    """Write the sky hemisphere of one panorama (base and gain map, upper half) and return its entry."""
    import io

    base, gain, meta = _split_gain_map((src / file).read_bytes())
    b = Image.open(io.BytesIO(base)).convert("RGB")
    g = Image.open(io.BytesIO(gain)).convert("RGB").resize(b.size, Image.Resampling.BILINEAR)
    w, h = b.size
    name = file.removesuffix("_1k.jpg")
    b.crop((0, 0, w, h // 2)).save(out / f"sky_{name}.jpg", quality=quality, optimize=True)
    g.crop((0, 0, w, h // 2)).save(out / f"sky_{name}_gain.jpg", quality=quality, optimize=True)
    return {"name": name, "source": file, **meta}


def crop(pano: Image.Image, x: int, y: int, side: int) -> Image.Image:
    """A ``SIZE``² crop centred on row ``y + side/2``, undistorted horizontally by the row's latitude."""
    w, h = pano.size
    lat = (0.5 - (y + side / 2) / h) * math.pi
    width = min(w - x, int(round(side / max(math.cos(lat), 0.2))))
    if y + side > h:
        raise ValueError(f"crop at row {y} of {side} rows leaves the {h}-row panorama")
    return pano.crop((x, y, x + width, y + side)).resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def main() -> None:
    import viser

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--viser", default=str(Path(viser.__file__).parent / "_assets" / "hdri"))
    ap.add_argument("--out", default="src/lyra/assets/photo_textures")
    ap.add_argument("--quality", type=int, default=88)
    args = ap.parse_args()
    src, out = Path(args.viser), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atlas = Image.new("RGB", (SIZE * len(CROPS), SIZE))
    entries = []
    for i, (name, kind, file, x, y, side) in enumerate(CROPS):
        pano = Image.open(src / file).convert("RGB")
        atlas.paste(crop(pano, x, y, side), (i * SIZE, 0))
        entries.append({"name": name, "kind": kind, "source": file, "crop": [x, y, side]})
    atlas.save(out / "atlas.jpg", quality=args.quality, optimize=True)
    skies = [sky(src, f, out, args.quality) for f in SKIES]
    (out / "bank.json").write_text(json.dumps({"size": SIZE, "licence": "CC0-1.0 (Poly Haven)",
                                               "textures": entries, "skies": skies}, indent=1) + "\n")
    sources = ", ".join(sorted({c[2].removesuffix("_1k.jpg") for c in CROPS} | {f.removesuffix("_1k.jpg")
                                                                                  for f in SKIES}))
    (out / "NOTICE.md").write_text(NOTICE.format(n=len(CROPS), size=SIZE, sources=sources,
                                                 count=len(sources.split(", ")),
                                                 skies=", ".join(f.removesuffix("_1k.jpg") for f in SKIES)))
    print(f"{out / 'atlas.jpg'}: {len(CROPS)} textures, {(out / 'atlas.jpg').stat().st_size} bytes")


if __name__ == "__main__":
    main()
